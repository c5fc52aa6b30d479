"""SQLite: the search indexes keep no per-row column sizes (FTS5 ``columnsize=0``) and
gather 8 MiB of new entries before writing them out (``hashsize``).

By default an FTS5 table keeps, in a shadow table (``<index>_docsize``), how many tokens
each column of each row holds. Only ranking reads them (``bm25()``, ``xColumnSize``);
Kontak's searches ask an index for the rowids that hold a text's trigrams and order by
the contacts' own ids, so nothing ever read them. Writing them was a B-tree insert per
indexed row: without them the indexing of a million contacts took 3.79-3.87 s against
4.55-4.68 s (alternated, docs/benchmarks.md, session 31), the catch-up after every big
import that much cheaper.

FTS5 holds the entries of the rows it is given in memory and writes them out as a new
segment of the index once they pass ``hashsize`` bytes (1 MiB by default) or at the
commit. A catch-up batch of 100,000 rows made ~20 segments at 1 MiB, each to be merged
into the rest later; at 8 MiB, a few. The same 1M contacts: 2.45 s against 3.96-4.22 s
(3.42-3.48 against 5.15-5.25 s with the merge after it); a 1M-row CLI import's catch-up
(contacts and accounts) 3.76-4.67 s against 4.95-5.55 s. 32 MiB gave nothing more. The
memory is the writing connection's, while it writes.

FTS5 cannot drop the option in place: each index is dropped, made again with it, given
back its settings (``automerge`` off, revision 0007) and the new ``hashsize`` (taken away
again by the downgrade), and rebuilt from its table, which
indexes every row, those of pending ranges included; so the ranges are dropped (no row is
ever indexed twice). The rebuild is merged into one segment, as a catch-up of many rows
leaves it. A SQLite without FTS5 trigrams has no such indexes: nothing to do, nor on
PostgreSQL.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

from alembic import op
from sqlalchemy.exc import DBAPIError

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_INDEXES = {"contact_search": "contact", "social_search": "social_account"}
_OPTION = ", columnsize=0"
HASH_BYTES = 8 << 20  # FTS5's hashsize; its default is 1 MiB


def upgrade() -> None:
    _remake(without_sizes=True)


def downgrade() -> None:
    _remake(without_sizes=False)


def _remake(*, without_sizes: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for index, table in _INDEXES.items():
        create = bind.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (index,)
        ).scalar()
        if create is None:  # no FTS5 trigrams in this SQLite (revision 0004)
            continue
        body = create.removesuffix(")").removesuffix(_OPTION)
        settings = bind.exec_driver_sql(
            f"SELECT k, v FROM {index}_config WHERE k NOT IN ('version', 'hashsize')"
        ).fetchall()
        bind.exec_driver_sql(f"DROP TABLE {index}")
        bind.exec_driver_sql(body + (_OPTION if without_sizes else "") + ")")
        for key, value in settings:
            bind.exec_driver_sql(f"INSERT INTO {index} ({index}, rank) VALUES (?, ?)", (key, value))
        if without_sizes:
            try:  # an FTS5 older than the option refuses it: it keeps its default then
                with bind.begin_nested():
                    bind.exec_driver_sql(
                        f"INSERT INTO {index} ({index}, rank) VALUES ('hashsize', ?)",
                        (HASH_BYTES,),
                    )
            except DBAPIError:
                pass
        bind.exec_driver_sql(f"INSERT INTO {index} ({index}) VALUES ('rebuild')")
        bind.exec_driver_sql(f"INSERT INTO {index} ({index}) VALUES ('optimize')")
        bind.exec_driver_sql("DELETE FROM search_pending WHERE name = ?", (table,))
