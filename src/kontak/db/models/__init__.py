"""All mapped classes; import from here so that every table is registered on ``Base.metadata``."""

from kontak.db.models.account import ApiToken, Organization, User
from kontak.db.models.contact import Contact, ContactTag, SocialAccount
from kontak.db.models.custom_field import CustomField
from kontak.db.models.import_job import ImportJob
from kontak.db.models.tag import Tag

__all__ = [
    "ApiToken",
    "Contact",
    "ContactTag",
    "CustomField",
    "ImportJob",
    "Organization",
    "SocialAccount",
    "Tag",
    "User",
]
