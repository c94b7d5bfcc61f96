"""event outbox

Revision ID: 0004
Revises: 0002 (rechained onto 0003 at merge)
Create Date: 2026-12-02 00:10:00
"""

from alembic import op
import sqlalchemy as sa
import voipbin.store.types


revision = '0004'
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('event_outbox',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('target', sa.String(length=2048), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=512), nullable=False),
    sa.Column('node_id', sa.String(length=64), nullable=False),
    sa.Column('tm_create', voipbin.store.types.UTCDateTime(), nullable=False),
    sa.Column('tm_next', voipbin.store.types.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('event_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_outbox_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_event_outbox_node_id'), ['node_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_event_outbox_seq'), ['seq'], unique=False)
        batch_op.create_index(batch_op.f('ix_event_outbox_status'), ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('event_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_outbox_status'))
        batch_op.drop_index(batch_op.f('ix_event_outbox_seq'))
        batch_op.drop_index(batch_op.f('ix_event_outbox_node_id'))
        batch_op.drop_index(batch_op.f('ix_event_outbox_customer_id'))
    op.drop_table('event_outbox')
