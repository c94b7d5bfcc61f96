"""Who owns live rows: this node and this boot of it.

Every row that is live on a node (a call, an activeflow, a recording, a transcribe...) records the node id
and the boot id of the process that owns it. A node that starts again ends what an earlier boot of it
left live, so a crash (``kill -9``, power loss) strands nothing; another node never touches those rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, select

from voipbin.store.db import Database
from voipbin.store.types import utcnow


@dataclass(frozen=True)
class NodeOwner:
    node_id: str
    boot_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def stamp(self) -> dict[str, Any]:
        """Column values marking a row as owned by this boot."""
        return {"node_id": self.node_id, "boot_id": self.boot_id}

    def left_by_earlier_boot(self, model: Any) -> ColumnElement[bool]:
        """Rows this node owned in an earlier boot (rows of other nodes are theirs to recover)."""
        return and_(model.node_id == self.node_id, model.boot_id != self.boot_id)


async def finish_left_rows(db: Database, owner: NodeOwner, model: Any, live: str, final: str) -> list[Any]:
    """Move every row of ``model`` an earlier boot of this node left in status ``live`` to ``final``;
    returns the changed rows (their owners publish the events)."""
    async with db.session() as session:
        rows = list(
            (
                await session.execute(
                    select(model).where(owner.left_by_earlier_boot(model), model.status == live)
                )
            )
            .scalars()
            .all()
        )
        for row in rows:
            row.status = final
            row.tm_update = utcnow()
        await session.commit()
    return rows
