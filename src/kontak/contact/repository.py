"""SQL for contacts: look-ups, identity conflicts, filtered keyset listing."""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    LargeBinary,
    Select,
    String,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    column,
    delete,
    exists,
    false,
    func,
    literal_column,
    null,
    or_,
    select,
    table,
    text,
    tuple_,
    union,
    union_all,
)
from sqlalchemy import (
    cast as cast_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Result, Row
from sqlalchemy.orm import QueryableAttribute, Session, aliased, selectinload
from sqlalchemy.sql import Executable

from kontak.db import search_index
from kontak.db.driver import insert_rows
from kontak.db.models import Contact, ContactTag, SocialAccount, Tag
from kontak.db.session import UNICODE_LOWER
from kontak.errors import ConflictItem

Column = ColumnElement[Any] | QueryableAttribute[Any]


@dataclass(frozen=True, slots=True)
class ContactFilter:
    """List filters; ``q`` is already split into the forms it is searched in."""

    text: str | None = None
    handle_text: str | None = None  # handles are searched for this (None: ``text``)
    exact_phone: str | None = None
    exact_email: str | None = None
    phone_prefix: str | None = None
    phone_digits: str | None = None
    tag: str | None = None
    channel: str | None = None


def _loaded() -> Select[Contact]:
    return select(Contact).options(
        selectinload(Contact.social_accounts), selectinload(Contact.tags)
    )


def get(session: Session, organization_id: str, contact_id: str) -> Contact | None:
    return session.scalars(
        _loaded().where(Contact.organization_id == organization_id, Contact.id == contact_id)
    ).one_or_none()


def find_conflicts(
    session: Session,
    organization_id: str,
    *,
    email_key: str | None,
    phone: str | None,
    socials: Sequence[tuple[str, str]],
    exclude_id: str | None = None,
) -> list[ConflictItem]:
    """The existing contacts that already hold one of these identities."""
    found: list[ConflictItem] = []
    mine = Contact.organization_id == organization_id
    other = Contact.id != exclude_id if exclude_id else None
    if email_key:
        by_email = select(Contact.id, Contact.email).where(mine, Contact.email_key == email_key)
        if other is not None:
            by_email = by_email.where(other)
        for cid, email in session.execute(by_email):
            found.append(ConflictItem("email", email or email_key, cid))
    if phone:
        by_phone = select(Contact.id).where(mine, Contact.phone == phone)
        if other is not None:
            by_phone = by_phone.where(other)
        for cid in session.scalars(by_phone):
            found.append(ConflictItem("phone", phone, cid))
    if socials:
        stmt2 = select(
            SocialAccount.contact_id, SocialAccount.platform, SocialAccount.handle
        ).where(
            SocialAccount.organization_id == organization_id,
            # The handles first: SQLite descends the (handle_key, platform, organization_id)
            # index for them; it cannot for the pairs, and would scan the accounts.
            SocialAccount.handle_key.in_(sorted({key for _platform, key in socials})),
            tuple_(SocialAccount.platform, SocialAccount.handle_key).in_(list(socials)),
        )
        if exclude_id:
            stmt2 = stmt2.where(SocialAccount.contact_id != exclude_id)
        for cid, platform, handle in session.execute(stmt2):
            found.append(ConflictItem(f"social_accounts.{platform}", handle, cid))
    return found


def list_page(
    session: Session,
    organization_id: str,
    filters: ContactFilter,
    *,
    limit: int,
    before_id: str | None = None,
) -> list[Row[Any]]:
    """Up to ``limit`` contacts, newest first, strictly older than ``before_id``: rows of
    their own columns (:data:`READ_COLUMNS`); :func:`links_of_page` reads their tags and
    social accounts. Rows, not ORM objects: a page's 51 objects with their two eager
    loads cost more Python than its search (1M contacts, PostgreSQL)."""
    postgres = session.get_bind().dialect.name == "postgresql"

    def page(conditions: list[ColumnElement[bool]]) -> list[Row[Any]]:
        stmt = _read_columns(Contact).where(Contact.organization_id == organization_id)
        stmt = stmt.where(*conditions)
        if before_id:
            stmt = stmt.where(Contact.id < before_id)
        return list(session.execute(stmt.order_by(Contact.id.desc()).limit(limit)))

    def by_tag_links(conditions: list[ColumnElement[bool]]) -> list[Row[Any]]:
        # SQLite: the tag's links newest contact first, from the (tag_id, contact_id)
        # index, in one statement: only tagged contacts are read, however far back they
        # are (374,000 untagged newest contacts on top of 1M: 250-560 ms -> 5-8 ms). An
        # expression no index answers stands for the organization's contacts: without
        # statistics the planner walked them and looked each one's links up.
        stmt = (
            _read_columns(Contact)
            .join(ContactTag, ContactTag.contact_id == Contact.id)
            .where(
                ContactTag.tag_id == _tag_id(organization_id, filters),
                _unindexed(Contact.organization_id, postgres) == organization_id,
                *conditions,
            )
        )
        if before_id:
            stmt = stmt.where(ContactTag.contact_id < before_id)
        return list(session.execute(stmt.order_by(ContactTag.contact_id.desc()).limit(limit)))

    def only(value: str | None) -> bool:
        # Whether ``value`` is the one filter (a first batch of a page's worth is then
        # the page; a channel or a text leaves out some: 16 pages' worth, one batch at 1M).
        f = filters
        given = (f.text, f.channel, f.exact_email, f.exact_phone, f.tag)
        return sum(1 for v in given if v) == 1 and bool(value)

    def newest(key: QueryableAttribute[str], *where: ColumnElement[bool]) -> Source:
        # Ids of ``key`` where ``where`` holds, newest first, by keyset: one index range.
        def next_ids(older_than: str | None, rows: int) -> list[str]:
            stmt = select(key).where(*where)
            if older_than:
                stmt = stmt.where(key < older_than)
            return list(session.scalars(stmt.order_by(key.desc()).limit(rows)))

        return next_ids

    def race(sources: list[Source], tag_apart: bool) -> list[Row[Any]]:
        # PostgreSQL: candidates from each source the filters give (the channel's index,
        # the tag's links, the text's matches), each newest first and holding every
        # match. Each round every source gives its next ids older than a frontier (a
        # page's worth, 16 with other filters, then four times as many each round, up
        # to BATCH_AT_MOST); the ids of the one reaching furthest back are checked, and
        # the frontier moves to its last: every match newer than it is found. A source
        # that runs out holds every match left. One source alone could read far: a big
        # import tagged "promo" and sent by WhatsApp, newest, then channel=email&tag=promo
        # read all its links (1M + 374,000 contacts: 2.6 s), and a text none of its
        # matches hold with a tag read the tag's every link.
        conditions, _, _ = _conditions(
            session, organization_id, filters, walking=Contact, tag_apart=tag_apart
        )
        lone = len(sources) == 1 and only(filters.tag or filters.text)
        batch = limit if lone else FIRST_BATCH_PAGES * limit
        found: list[Row[Any]] = []
        older_than, jit_off = before_id, False
        while True:
            reads = [next_ids(older_than, batch) for next_ids in sources]
            short = [ids for ids in reads if len(ids) < batch]
            ids = min(short, key=len) if short else min(reads, key=lambda ids: ids[-1])
            if len(ids) > JIT_OFF_FROM and not jit_off:
                # A check of thousands of ids is priced above JIT's threshold: compiling
                # it took ~12 ms of each ~60-100 ms batch of 10,000.
                session.execute(text("SET LOCAL jit = off"))
                jit_off = True
            if ids:
                stmt = _read_columns(Contact).where(
                    _any_of(Contact.id, ids),
                    _unindexed(Contact.organization_id, postgres=True) == organization_id,
                    *conditions,
                )
                stmt = stmt.order_by(Contact.id.desc()).limit(limit - len(found))
                found += session.execute(stmt)
            if short or len(found) == limit:
                return found
            older_than, batch = ids[-1], min(batch * 4, BATCH_AT_MOST)

    def by_candidates() -> list[Row[Any]]:
        # PostgreSQL, past the walk first: the race of the filters' sources.
        sources: list[Source] = []
        if filters.channel:  # its index (migration 0013)
            sources.append(
                newest(
                    Contact.id,
                    Contact.organization_id == organization_id,
                    Contact.channel == filters.channel,
                )
            )
        if filters.tag:
            # The tag's links, from the (tag_id, contact_id) index. As one statement with
            # the contacts, PostgreSQL's planner (the tag's share hidden behind the tag-id
            # subquery) walked the contacts by primary key (931 ms) or read and sorted all
            # 167,000 links (134 ms).
            sources.append(
                newest(
                    ContactTag.contact_id, ContactTag.tag_id == _tag_id(organization_id, filters)
                )
            )
        tag_alone = len(sources) == 1 and bool(filters.tag)
        if not text_indexed:
            return race(sources, tag_apart=tag_alone)
        cursor: list[Result[Any]] = []
        read: list[str] = []  # ids the cursor gave, newest first, not yet passed

        def text_matches(older_than: str | None, rows: int) -> list[str]:
            # The first batch by a top-N sort of the matches; past it, the rest sorted
            # once and read on through a cursor (each batch had read them all again:
            # 374,000 matches, a channel none of them has, 19 s). Opened only then: it
            # reads a first row at once, the cost of sorting all of them.
            nonlocal read
            if not cursor:
                if older_than == before_id:
                    return list(
                        session.scalars(
                            _matches_newest_first(
                                session, organization_id, filters, older_than, rows
                            )
                        )
                    )
                stmt = _matches_newest_first(session, organization_id, filters, older_than)
                cursor.append(session.execute(stmt.execution_options(stream_results=True)))
            if older_than is not None:
                read = [i for i in read if i < older_than]
            while len(read) < rows:
                more = [row[0] for row in cursor[0].fetchmany(rows - len(read))]
                if not more:
                    break
                read += [i for i in more if older_than is None or i < older_than]
            return read[:rows]

        sources.append(text_matches)
        try:
            return race(sources, tag_apart=False)
        finally:
            for result in cursor:
                result.close()

    bound = ""  # the oldest contact newest_by_like checked ('' for all of them)

    def newest_by_like(rows: int) -> tuple[list[Row[Any]], bool]:
        # A text that many contacts hold is found by LIKE alone among the newest ones, a
        # page before the indexes could gather their matches (1M contacts, a common
        # first name: SQLite's match lists 53-83 ms, PostgreSQL's count 60-90 ms,
        # against ~2-6 ms). The matches among the ``rows`` newest, and whether they are
        # the page (a full page, or every contact checked).
        nonlocal bound
        bound = _walk_bound(session, organization_id, before_id, rows)
        like_alone, _, _ = _conditions(session, organization_id, filters, newer_than=bound)
        found = page([*like_alone, Contact.id >= bound])
        return found, len(found) == limit or not bound

    def walk_on(found: list[Row[Any]]) -> list[Row[Any]] | None:
        # Where the newest contacts held a page's matches in part but densely (a common
        # first name), the older ones hold the rest a few thousand rows on: walk on, as
        # far as that density needs four times over, rather than gather the candidates
        # first (1M contacts, "Faja": PostgreSQL's count 20-29 ms, SQLite's match lists
        # 39 ms). None where that window held too few: matches crowded among the newest.
        rows = min(WALK_FIRST * -(-WALK_ON_MARGIN * limit // len(found)), WALK_ON_AT_MOST)
        if not postgres:
            # The window's bound from the organization's index costs little here: the
            # walk over it again, handles read as one range.
            more, whole = newest_by_like(WALK_FIRST + rows)
            return more if whole else None
        # PostgreSQL reads the table to count off a window (0.5 us a row): the window as
        # a subquery instead, which the walk pulls rows from until the page is full.
        window = (
            select(Contact)
            .where(Contact.organization_id == organization_id, Contact.id < bound)
            .order_by(Contact.id.desc())
            .limit(rows)
            .subquery()
        )
        older = aliased(Contact, window)
        conditions, _, _ = _conditions(session, organization_id, filters, walking=older)
        stmt = (
            _read_columns(older)
            .where(*conditions)
            .order_by(older.id.desc())
            .limit(limit - len(found))
        )
        rest = list(session.execute(stmt))
        return found + rest if len(found) + len(rest) == limit else None

    def by_like_first() -> list[Row[Any]] | None:
        found, whole = newest_by_like(WALK_FIRST)
        if whole:
            return found
        # PostgreSQL gathers the rest through the indexes at the cost of every match (130
        # ms for a common first name at 1M): it walks on from a single match.
        return walk_on(found) if len(found) >= (1 if postgres else WALK_ON_FROM) else None

    if (
        postgres
        and filters.channel
        and (filters.text or filters.tag)
        and _few_in_channel(session, organization_id, filters.channel, before_id)
    ):
        # A channel that few contacts hold: its index (migration 0013) gives them, each
        # checked for the rest. Walking the newest contacts, the tag's links or the text's
        # matches instead checked the channel of each (1M contacts, a channel none holds:
        # with a tag 2.5 s, with a common name 1.9 s).
        conditions, _, _ = _conditions(session, organization_id, filters, walking=Contact)
        return page(conditions)
    # PostgreSQL counts a text's candidates at the cost of all of them: walk first there.
    # SQLite too where no index answers the text (fewer than three characters): if the
    # newest contacts hold too few matches, the walk is long, and reads the accounts once.
    text_indexed = bool(filters.text and min(len(filters.text), len(_handle_text(filters))) >= 3)
    walked_first = bool(filters.text and (postgres or not text_indexed))
    if walked_first:
        found = by_like_first()
        if found is not None:
            return found
    # The newest contacts held too few matches: where no index answers the text, the walk
    # from here on is long. Not with a channel: it rejects most contacts before their
    # accounts are looked at (1M + 374,000 without one: q=ek&channel=sms 71-79 ms walking,
    # 124-194 ms reading the accounts first).
    conditions, many, few = _conditions(
        session,
        organization_id,
        filters,
        tag_apart=True,
        long_walk=walked_first and only(filters.text),
    )
    if many:  # SQLite counted more than FEW_MATCHES candidates (cheaply)
        found = by_like_first()
        if found is not None:
            return found
    if postgres and not few and (filters.tag or text_indexed):
        return by_candidates()
    if filters.tag and not few:
        return by_tag_links(conditions)
    if filters.tag:  # checked on each of the few candidates
        conditions.append(_has_tag(Contact, organization_id, filters))
    return page(conditions)


def _few_in_channel(
    session: Session, organization_id: str, channel: str, before_id: str | None
) -> bool:
    """PostgreSQL: whether at most FEW_MATCHES contacts (older than ``before_id``) have
    ``channel``; counted on the channel's index, up to that many."""
    stmt: Select[Any] = select(literal_column("1")).where(
        Contact.organization_id == organization_id, Contact.channel == channel
    )
    if before_id:
        stmt = stmt.where(Contact.id < before_id)
    # In the index's order: without it the planner read the table from its start, where a
    # channel the newest contacts lack may be far.
    some = stmt.order_by(Contact.id.desc()).limit(FEW_MATCHES + 1).subquery()
    return session.execute(select(func.count()).select_from(some)).scalar_one() <= FEW_MATCHES


def _walk_bound(session: Session, organization_id: str, before_id: str | None, rows: int) -> str:
    """The id of the ``rows``-th newest contact older than ``before_id`` ('' when there
    are fewer). A value, not a subquery: the planners then see how narrow the
    range is (PostgreSQL read a subquery's range of handles through the trigram index)."""
    stmt = select(Contact.id).where(Contact.organization_id == organization_id)
    if before_id:
        stmt = stmt.where(Contact.id < before_id)
    newest = session.scalar(stmt.order_by(Contact.id.desc()).offset(rows - 1).limit(1))
    return newest or ""


# The contact's own columns that the API shows (ContactRead's other fields, its tags and
# social accounts, come from links_of_page).
READ_COLUMNS = (
    "id",
    "name",
    "email",
    "phone",
    "channel",
    "address",
    "custom_fields",
    "source",
    "created_at",
    "updated_at",
)


def _read_columns(entity: type[Contact]) -> Select[Any]:
    return select(*(getattr(entity, name) for name in READ_COLUMNS))


def links_of_page(
    session: Session, contact_ids: Sequence[str]
) -> tuple[dict[str, list[str]], dict[str, list[tuple[str, str]]]]:
    """The tag names (by name) and the social accounts as (platform, handle), by platform
    and handle, of each of a page's contacts."""
    if not contact_ids:
        return {}, {}
    postgres = session.get_bind().dialect.name == "postgresql"
    tags, socials = _PAGE_LINKS[postgres]
    # The ids as one parameter: the statements are built once and their text is the same
    # for every page (51 ids as a list of parameters cost ~1.3 ms of Python a page to
    # build and compile, and on PostgreSQL are over psycopg's bound of 50 for caching).
    ids = {"ids": list(contact_ids) if postgres else json.dumps(list(contact_ids))}
    names: dict[str, list[str]] = {}
    for contact_id, name in _driver_rows(session, tags, ids):
        names.setdefault(contact_id, []).append(name)
    accounts: dict[str, list[tuple[str, str]]] = {}
    for contact_id, platform, handle in _driver_rows(session, socials, ids):
        accounts.setdefault(contact_id, []).append((platform, handle))
    return names, accounts


def _page_links(postgres: bool) -> tuple[Executable, Executable]:
    """The statements of :func:`links_of_page` for one engine: the contact ids come as the
    parameter ``ids`` (PostgreSQL: an array; SQLite: a JSON list, read by json_each)."""

    def among(column: Column) -> ColumnElement[bool]:
        if postgres:
            return column == any_(bindparam("ids", type_=ARRAY(String)))
        listed = text("SELECT value FROM json_each(:ids)").columns(value=String)
        return column.in_(listed)

    tags = (
        select(ContactTag.contact_id, Tag.name)
        .join(Tag, Tag.id == ContactTag.tag_id)
        .where(among(ContactTag.contact_id))
        .order_by(ContactTag.contact_id, Tag.name)
    )
    socials = (
        select(SocialAccount.contact_id, SocialAccount.platform, SocialAccount.handle)
        .where(among(SocialAccount.contact_id))
        .order_by(SocialAccount.contact_id, SocialAccount.platform, SocialAccount.handle_key)
    )
    return tags, socials


_PAGE_LINKS = {postgres: _page_links(postgres) for postgres in (False, True)}


ExportPage = tuple[
    Sequence[str],  # id
    Sequence[str],  # name
    Sequence[str],  # email ('' for none, likewise the rest)
    Sequence[str],  # phone
    Sequence[str],  # channel
    Sequence[str],  # address
    Sequence[str | None],  # custom fields as JSON text (None when not asked for)
]


def export_page(
    session: Session,
    organization_id: str,
    filters: ContactFilter,
    *,
    limit: int,
    before_id: str | None = None,
    custom_fields: bool = True,
) -> ExportPage | None:
    """Like :func:`list_page`, as columns (None past the last contact): an export reads a
    million contacts, and ORM objects cost ~50 µs each."""
    stmt = select(
        Contact.id,
        Contact.name,
        func.coalesce(Contact.email, ""),
        func.coalesce(Contact.phone, ""),
        func.coalesce(Contact.channel, ""),
        func.coalesce(Contact.address, ""),
        cast_(Contact.custom_fields, Text) if custom_fields else null(),
    ).where(Contact.organization_id == organization_id)
    conditions, _, _ = _conditions(session, organization_id, filters)
    stmt = stmt.where(*conditions)
    if before_id:
        stmt = stmt.where(Contact.id < before_id)
    rows = _driver_rows(session, stmt.order_by(Contact.id.desc()).limit(limit))
    if not rows:
        return None
    return cast(ExportPage, tuple(zip(*rows, strict=True)))


def links_of(
    session: Session, contact_ids: Sequence[str], *, contiguous: bool
) -> tuple[dict[str, str], dict[str, list[tuple[str, str, str]]]]:
    """Each contact's tag ids (joined by spaces, in no order), and its social accounts as
    (platform, handle key, handle), in no order. With ``contiguous`` the ids are every
    contact of the organization between the first and the last (an unfiltered page): one
    range scan each instead of a list of thousands of ids. (Links of other organizations'
    contacts whose ids fall in the range may come back; they are never asked for.
    Filtering on the organization here would make the planner walk the organization's
    whole index.)"""
    socials = select(
        SocialAccount.contact_id,
        SocialAccount.platform,
        SocialAccount.handle_key,
        SocialAccount.handle,
    )
    # Grouped by the database along the primary key, which covers it: a row a contact.
    tags = select(ContactTag.contact_id, func.aggregate_strings(ContactTag.tag_id, " "))
    if contiguous:
        low, high = min(contact_ids), max(contact_ids)
        socials = socials.where(SocialAccount.contact_id.between(low, high))
        tags = tags.where(ContactTag.contact_id.between(low, high))
    else:
        socials = socials.where(SocialAccount.contact_id.in_(contact_ids))
        tags = tags.where(ContactTag.contact_id.in_(contact_ids))
    tag_ids: dict[str, str] = dict(_driver_rows(session, tags.group_by(ContactTag.contact_id)))
    accounts: dict[str, list[tuple[str, str, str]]] = {}
    for contact_id, platform, key, handle in _driver_rows(session, socials):
        accounts.setdefault(contact_id, []).append((platform, key, handle))
    return tag_ids, accounts


# An export reads each of a million contacts' pages once: a page cache this small is as
# fast, and the connection does not fill its own (64 MB: kontak.db.session) with them.
EXPORT_CACHE_KIB = 4096


@contextmanager
def reading_once(session: Session) -> Iterator[None]:
    """SQLite: a small page cache on the session's connection while it reads every contact
    once (an export); the connection's own cache size is given back after."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    raw: Any = session.connection().connection.dbapi_connection
    (before,) = raw.execute("PRAGMA main.cache_size").fetchone()
    raw.execute(f"PRAGMA main.cache_size = -{EXPORT_CACHE_KIB}")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA main.cache_size = {int(before)}")


def _driver_rows(
    session: Session, stmt: Executable, params: dict[str, Any] | None = None
) -> Sequence[Any]:
    """The rows of ``stmt`` as the driver's own tuples, for the statements that read a
    million rows: SQLAlchemy's ``Row`` costs ~0.6 µs each. Only for columns the driver
    already returns as wanted (text here)."""
    result = session.connection().execute(stmt, params)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def tag_names(session: Session, organization_id: str, tag_ids: Iterable[str]) -> dict[str, str]:
    """The names of these tags of the organization: id → name."""
    found: dict[str, str] = {}
    ids = list(tag_ids)
    for start in range(0, len(ids), 1000):  # well under any engine's bound parameters
        names = select(Tag.id, Tag.name).where(
            Tag.organization_id == organization_id, Tag.id.in_(ids[start : start + 1000])
        )
        found.update(_driver_rows(session, names))
    return found


# Up to this many matches of a search, the page is read from the matches (looked up by
# rowid and sorted); beyond it they are dense enough that walking the organization's
# contacts newest-first fills a page after a few thousand rows.
FEW_MATCHES = 2000
WALK_FIRST = 1000  # newest contacts a search checks by LIKE alone before it asks the indexes
# When that many of those match, the search walks on (up to this many times as far as
# their density predicts a page needs) before it gathers the candidates.
WALK_ON_FROM = 20
WALK_ON_MARGIN = 4
WALK_ON_AT_MOST = 50_000  # contacts (PostgreSQL: ~25 ms)
# PostgreSQL reads the candidates of a filter by tag (the tag's links), by a text whose
# matches the newest contacts do not hold (the trigram indexes'), or by a channel with
# either (its index), in batches: a page's worth first (this many with other filters),
# then four times as many each time, up to BATCH_AT_MOST.
FIRST_BATCH_PAGES = 16
# A source of candidates: the ids of the next ``rows`` of them older than an id, newest first.
Source = Callable[[str | None, int], list[str]]
BATCH_AT_MOST = 10_000
JIT_OFF_FROM = 1000  # ids in a batch (PostgreSQL)
_CONTACT_MATCHES = "SELECT rowid FROM contact_search WHERE contact_search MATCH :contact_match"
_SOCIAL_MATCHES = "SELECT rowid FROM social_search WHERE social_search MATCH :social_match"


def _handle_text(f: ContactFilter) -> str:
    """What handles are searched for: ``q`` without the ``@`` people write handles with."""
    return f.handle_text or f.text or ""


def _trigrams(text: str) -> str:
    """An FTS5 query for rows holding every trigram of ``text``: a superset of the rows
    holding ``text`` (the indexes keep no positions; LIKE decides)."""
    grams = dict.fromkeys(text[i : i + 3] for i in range(len(text) - 2))
    return " AND ".join('"' + g.replace('"', '""') + '"' for g in grams)


_SEARCH_INDEXES: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _has_search_indexes(session: Session) -> bool:
    """Whether migration 0004 could make the indexes (SQLite with FTS5 trigrams); asked
    once per engine."""
    bind = session.get_bind()
    engine = bind.engine  # a Connection's or an Engine's own
    known = _SEARCH_INDEXES.get(engine)
    if known is None:
        known = engine.dialect.name == "sqlite" and bool(
            session.execute(
                text("SELECT 1 FROM sqlite_master WHERE name = 'contact_search'")
            ).first()
        )
        _SEARCH_INDEXES[engine] = known
    return known


def _pending_rows(table: str, pending: dict[str, list[tuple[int, int]]]) -> str:
    """SQL that adds the rowids of ``table``'s pending ranges to a list of matches."""
    return "".join(
        f" UNION ALL SELECT rowid FROM {table} WHERE rowid BETWEEN {int(a)} AND {int(b)}"
        for a, b in pending.get(table, [])
    )


def _search(session: Session, f: ContactFilter) -> tuple[ColumnElement[bool] | None, bool]:
    """SQLite, text of 3 characters or more: the candidates for ``q`` from the trigram
    indexes of migration 0004 (name, email key, phone; handles), to be decided by the LIKE
    conditions that come with it (None: LIKE alone decides), and whether they are more
    than ``FEW_MATCHES``."""
    if f.text is None or min(len(f.text), len(_handle_text(f))) < 3:
        return None, False
    if not _has_search_indexes(session):
        return None, False
    pending = search_index.pending_ranges(session.connection())
    if pending is None:
        return None, False  # an import's rows are still being indexed: LIKE alone, a while
    forms = [f.text, *(form for form in (f.phone_prefix, f.phone_digits) if form)]
    contact_match = " OR ".join(f"({_trigrams(form)})" for form in forms)
    params = {"contact_match": contact_match, "social_match": _trigrams(_handle_text(f))}
    # Rows not indexed yet (a second of creates, see kontak.db.search_index) are candidates
    # too: few, read by rowid.
    contacts = _CONTACT_MATCHES + _pending_rows("contact", pending)
    socials = _SOCIAL_MATCHES + _pending_rows("social_account", pending)
    rowid: ColumnElement[int] = literal_column("contact.rowid", Integer)
    few = FEW_MATCHES + 1
    count = session.execute(
        text(
            f"SELECT (SELECT COUNT(*) FROM ({contacts} LIMIT {few}))"
            f" + (SELECT COUNT(*) FROM ({socials} LIMIT {few}))"
        ),
        params,
    ).scalar_one()
    if count <= FEW_MATCHES:
        found = session.execute(
            text(
                f"{contacts} UNION SELECT c.rowid FROM social_account s"
                f" JOIN contact c ON c.id = s.contact_id WHERE s.rowid IN ({socials})"
            ),
            params,
        ).scalars()
        rowids = list(found)
        if not rowids:
            return false(), False
        # As a subquery (json_each), not a list of values: with a list SQLite walks the
        # organization's index instead of looking the rows up (1,757 matches: 96 -> 4 ms).
        listed = text("SELECT value FROM json_each(:rowids)").bindparams(rowids=json.dumps(rowids))
        return rowid.in_(listed.columns(value=Integer)), False
    # Many: each index gives its rowids once; the walk checks membership row by row.
    by_contact = text(contacts).bindparams(contact_match=contact_match)
    by_social = text(socials).bindparams(social_match=params["social_match"])
    social_rowid: ColumnElement[int] = literal_column("social_account.rowid", Integer)
    # Both as lists computed once (a correlated EXISTS re-ran the handle search for every
    # contact walked: "Hend" at 1M contacts, 720 -> 38 ms). The unary "+" keeps SQLite
    # from answering the OR by collecting and sorting every match instead of walking.
    walk_rowid: ColumnElement[int] = literal_column("+contact.rowid", Integer)
    walk_id: ColumnElement[str] = literal_column("+contact.id", String)
    walk = or_(
        walk_rowid.in_(by_contact.columns(rowid=Integer)),
        walk_id.in_(
            select(SocialAccount.contact_id).where(
                social_rowid.in_(by_social.columns(rowid=Integer))
            )
        ),
    )
    return walk, True


def _conditions(
    session: Session,
    organization_id: str,
    f: ContactFilter,
    *,
    newer_than: str | None = None,
    walking: type[Contact] | None = None,
    tag_apart: bool = False,
    long_walk: bool = False,
) -> tuple[list[ColumnElement[bool]], bool, bool]:
    """What decides which contacts match ``f``; whether SQLite's search indexes found
    many candidates for ``q``; whether the indexes found few (the conditions then hold
    the list of them). Without ``newer_than`` the candidates the indexes give for ``q``
    are a condition too (found with queries made here); with it, LIKE alone decides, for
    the contacts from that id on (their handles are read as one range). With ``walking``
    (``Contact`` itself, or a window of contacts as a subquery), LIKE alone decides, on
    its columns, each contact's handles looked up by its id. With
    ``tag_apart``, the tag is left to the caller. With ``long_walk`` (a walk that the
    newest contacts already showed to be long), the handles are the organization's with
    the text, read once."""
    indexed = newer_than is None and walking is None
    c = Contact if walking is None else walking
    conditions: list[ColumnElement[bool]] = []
    if f.channel:
        conditions.append(c.channel == f.channel)
    if f.tag and not tag_apart:
        conditions.append(_has_tag(c, organization_id, f))
    if f.exact_phone:
        conditions.append(c.phone == f.exact_phone)
    if f.exact_email:
        conditions.append(c.email_key == f.exact_email)
    candidates, many = _search(session, f) if indexed else (None, False)
    few = candidates is not None and not many
    if candidates is not None:
        conditions.append(candidates)  # the LIKE conditions decide
    if f.text:
        postgres = session.get_bind().dialect.name == "postgresql"
        options = _text_options(f, c.name, c.email_key, c.phone, postgres=postgres)
        handle_pattern = _handle_pattern(f)
        handle = SocialAccount.handle_key.like(handle_pattern, escape="\\")
        matches = None
        if indexed and postgres:
            matches = _few_matches(session, organization_id, f, options, handle)
        if matches is not None:
            conditions.append(matches)
            few = True
        elif newer_than is not None:
            # The accounts of the contacts from that id on: one range of the contact_id
            # index. Not by organization too: both engines would then read every account
            # of the organization from its (organization, platform, handle) index. The
            # contacts they lead to are the organization's only (the outer condition).
            # PostgreSQL: the handle's LIKE on an expression, so that no index answers it:
            # the planner ANDed the trigram index's matches of the whole table with the
            # range (1M contacts, "eko": 22,535 handles read, 5.5 -> 0.9 ms).
            recent_handle = (
                SocialAccount.handle_key.op("||")(literal_column("''")).like(
                    handle_pattern, escape="\\"
                )
                if session.get_bind().dialect.name == "postgresql"
                else handle
            )
            recent_handles = select(SocialAccount.contact_id).where(
                SocialAccount.contact_id >= newer_than, recent_handle
            )
            conditions.append(or_(*options, Contact.id.in_(recent_handles)))
        elif long_walk:
            # The walk passes many contacts without the text: the organization's accounts
            # that hold it, read once (PostgreSQL hashes them), cost less than a look-up
            # of each contact's own (374,000 newest contacts without "ek" on top of 1M:
            # 620 -> 324 ms, the accounts read in ~70 ms).
            with_handle = select(SocialAccount.contact_id).where(
                SocialAccount.organization_id == organization_id, handle
            )
            options.append(c.id.in_(with_handle))
            conditions.append(or_(*options))
        else:
            # A correlated look-up of the contact's own accounts, as a scalar subquery:
            # PostgreSQL would hash an EXISTS over every matching account first (a seq
            # scan of all handles; 1M contacts: 160 ms for "ri", where the walk needs
            # ~100 rows of 0.003 ms each).
            own_account = (
                select(literal_column("1"))
                .where(SocialAccount.contact_id == c.id, handle)
                .limit(1)
                .correlate(c)
                .scalar_subquery()
            )
            options.append(own_account.is_not(None))
            conditions.append(or_(*options))
    return conditions, many, few


def _any_of(column: Column, values: list[str]) -> ColumnElement[bool]:
    """PostgreSQL: ``column`` is one of ``values``, given as one array parameter."""
    return column == any_(bindparam("any_of", values, type_=ARRAY(String), unique=True))


def _unindexed(column: Column, postgres: bool) -> ColumnElement[str]:
    """``column`` as an expression no index answers (the same value)."""
    if postgres:
        return column.op("||")(literal_column("''"))
    return literal_column(f"+{column.table.name}.{column.name}", String)


def _tag_id(organization_id: str, f: ContactFilter) -> ColumnElement[str]:
    """The id of the organization's tag ``f.tag``, as a scalar subquery: the planners
    read it once and then use it as a value (an index range on it)."""
    return (
        select(Tag.id)
        .where(Tag.organization_id == organization_id, Tag.name == f.tag)
        .scalar_subquery()
    )


def _has_tag(c: type[Contact], organization_id: str, f: ContactFilter) -> ColumnElement[bool]:
    return exists().where(
        ContactTag.contact_id == c.id, ContactTag.tag_id == _tag_id(organization_id, f)
    )


def _text_options(
    f: ContactFilter,
    name: Column,
    email_key: Column,
    phone: Column,
    *,
    postgres: bool,
) -> list[ColumnElement[bool]]:
    """The ways a contact's own fields match ``q`` (any of them), on the given columns."""
    assert f.text is not None
    pattern = "%" + _escape_like(f.text.lower()) + "%"
    # The name in any case: ILIKE on PostgreSQL. SQLite's LIKE ignores the case of ASCII
    # letters, which is enough for a text of ASCII alone; SQLAlchemy's ilike there,
    # lower(name) LIKE lower(?), made the same test at twice the cost of a walk (1M
    # contacts, a text none holds: 1.08 -> 0.58 s for the statement), and SQLite's
    # lower() folds no other letter. A text with other letters is compared with the name
    # lowered by Python (UNICODE_LOWER), so that "ñandú" finds "Ñandú"; only names with
    # such letters can hold it (their bytes outnumber their characters), so only they are
    # passed to Python (1M ASCII names walked: 0.89 s with SQLite's lower(), 1.35 s with
    # Python's for every name).
    by_name: ColumnElement[bool]
    if postgres:
        by_name = name.ilike(pattern, escape="\\")
    elif pattern.isascii():
        by_name = name.like(pattern, escape="\\")
    else:
        by_name = and_(
            func.length(cast_(name, LargeBinary)) != func.length(name),
            getattr(func, UNICODE_LOWER)(name).like(pattern, escape="\\"),
        )
    options: list[ColumnElement[bool]] = [by_name, email_key.like(pattern, escape="\\")]
    if f.phone_prefix:
        options.append(phone.like(_escape_like(f.phone_prefix) + "%", escape="\\"))
    if f.phone_digits:
        options.append(phone.like("%" + f.phone_digits + "%"))
    return options


# PostgreSQL's trigram table (migration 0008): not a model, like the SQLite FTS5 tables.
_TRIGRAM = table(
    "contact_trigram",
    column("contact_id", String),
    column("organization_id", String),
    column("name", String),
    column("email_key", String),
    column("phone", String),
)
_TRIGRAM_TABLE: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _has_trigram_table(session: Session) -> bool:
    """PostgreSQL: whether migration 0008 made the trigram table; asked once per engine."""
    engine = session.get_bind().engine
    known = _TRIGRAM_TABLE.get(engine)
    if known is None:
        known = search_index.has_trigram_table(session.connection().connection.dbapi_connection)
        _TRIGRAM_TABLE[engine] = known
    return known


def _few_matches(
    session: Session,
    organization_id: str,
    f: ContactFilter,
    options: list[ColumnElement[bool]],
    handle: ColumnElement[bool],
) -> ColumnElement[bool] | None:
    """PostgreSQL: when at most FEW_MATCHES contacts match, the list of their ids (found
    through the trigram indexes of migrations 0005 and 0008, as one array); None
    when they are many: walking the organization's contacts newest-first then fills a
    page at once (1M contacts, a common name: ~260 -> a few ms)."""
    parts = _match_parts(session, organization_id, f, options, handle)
    # Read with UNION ALL, which can stop at the limit (UNION must see every match). The
    # ids read are the list: before, they were only counted, and the page read them again
    # (a text no index answers, two letters none holds at 1M: two scans of ~0.43 s each).
    some = union_all(*parts).limit(FEW_MATCHES + 1).subquery()
    ids = list(session.scalars(select(some.c[0])))
    if len(ids) > FEW_MATCHES:
        return None
    return _any_of(Contact.id, sorted(set(ids)))


def _match_parts(
    session: Session,
    organization_id: str,
    f: ContactFilter,
    options: list[ColumnElement[bool]],
    handle: ColumnElement[bool],
) -> list[Select[Any]]:
    """PostgreSQL: selects of the ids of the contacts matching ``q``, each answered by a
    trigram index: the trigram table's (contact's own fields), the handles'. The contacts
    of an import not yet in the trigram table (its id ranges) are checked by LIKE."""
    parts: list[Select[Any]] = []
    if _has_trigram_table(session):
        t = _TRIGRAM.c
        parts.append(
            select(t.contact_id).where(
                t.organization_id == organization_id,
                or_(*_text_options(f, t.name, t.email_key, t.phone, postgres=True)),
            )
        )
        pending = search_index.trigram_ranges(session.connection())
        if pending:
            parts.append(
                select(Contact.id).where(
                    Contact.organization_id == organization_id,
                    or_(*(Contact.id.between(a, b) for a, b in pending)),
                    or_(*options),
                )
            )
    else:
        parts.append(
            select(Contact.id).where(Contact.organization_id == organization_id, or_(*options))
        )
    parts.append(
        select(SocialAccount.contact_id).where(
            SocialAccount.organization_id == organization_id, handle
        )
    )
    return parts


def _matches_newest_first(
    session: Session,
    organization_id: str,
    f: ContactFilter,
    before_id: str | None,
    rows: int | None = None,
) -> Select[Any]:
    """PostgreSQL: the ids of the contacts older than ``before_id`` that the trigram
    indexes give for ``q``, newest first: with ``rows``, that many, each index's matches
    read whole and the newest kept (a top-N sort each, before the union); without, all of
    them sorted once, for a cursor to read on through."""
    assert f.text is not None
    options = _text_options(f, Contact.name, Contact.email_key, Contact.phone, postgres=True)
    handle = SocialAccount.handle_key.like(_handle_pattern(f), escape="\\")
    parts = []
    for part in _match_parts(session, organization_id, f, options, handle):
        key = part.selected_columns[0]
        if before_id:
            part = part.where(key < before_id)
        parts.append(part if rows is None else part.order_by(key.desc()).limit(rows))
    every = union(*parts).subquery()
    stmt = select(every.c[0]).order_by(every.c[0].desc())
    return stmt if rows is None else stmt.limit(rows)


def _handle_pattern(f: ContactFilter) -> str:
    """The LIKE pattern (escaped with backslashes) that handles holding ``q`` match."""
    return "%" + _escape_like(_handle_text(f).lower()) + "%"


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def set_tags(session: Session, contact: Contact, tag_ids: Sequence[str]) -> None:
    """Replace the contact's tag links; its ``tags`` are reloaded on the next ``get``."""
    session.execute(delete(ContactTag).where(ContactTag.contact_id == contact.id))
    link_tags(session, contact.organization_id, contact.id, tag_ids)
    session.expire(contact, ["tags"])


def link_tags(
    session: Session, organization_id: str, contact_id: str, tag_ids: Sequence[str]
) -> None:
    """Link a contact that has none of them to the tags ``tag_ids``."""
    insert_rows(
        session,
        _LINKS,
        [
            {"contact_id": contact_id, "tag_id": t, "organization_id": organization_id}
            for t in dict.fromkeys(tag_ids)
        ],
    )


# A new contact needs nothing of the ORM's unit of work, which cost ~0.35 ms a create more
# than Core inserts (docs/benchmarks.md, session 8), nor of Core's execution, ~12% of a
# create's CPU more than the driver's cursor (session 35; kontak.db.driver).
_CONTACTS = cast(Table, Contact.__table__)
_SOCIAL_ACCOUNTS = cast(Table, SocialAccount.__table__)
_LINKS = cast(Table, ContactTag.__table__)


def insert_new(
    session: Session, contact: dict[str, Any], social_accounts: Sequence[dict[str, Any]]
) -> None:
    """A new contact and its social accounts, every column given. A unique index that
    refuses either raises ``IntegrityError``."""
    insert_rows(session, _CONTACTS, [contact])
    insert_rows(session, _SOCIAL_ACCOUNTS, social_accounts)


def add(session: Session, contact: Contact) -> None:
    session.add(contact)
    session.flush()


def delete_one(session: Session, organization_id: str, contact_id: str) -> bool:
    result = session.execute(
        delete(Contact).where(
            and_(Contact.organization_id == organization_id, Contact.id == contact_id)
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
