"""Creating customers with their billing account and first login; the bootstrap on first start."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from voipbin.billing.ledger import open_account
from voipbin.config import Settings
from voipbin.security import Passwords, hash_token, new_accesskey
from voipbin.store.db import Database
from voipbin.store.tables import Accesskey, Agent, Customer, Number
from voipbin.store.types import utcnow

log = logging.getLogger(__name__)


PLATFORM_ADMIN = "project_super_admin"  # VoIPBIN's platform administrator permission


@dataclass
class NewCustomer:
    customer: Customer
    agent: Agent
    password: str
    accesskey: str


async def create_customer(
    session: AsyncSession,
    *,
    passwords: Passwords,
    initial_balance: int,
    name: str,
    username: str,
    password: str | None = None,
    permission: str = "customer_admin",
    email: str = "",
) -> NewCustomer:
    password = password or secrets.token_urlsafe(12)
    customer = Customer(name=name, email=email)
    session.add(customer)
    await session.flush()
    account = await open_account(session, customer.id, initial_balance)
    customer.billing_account_id = account.id
    agent = Agent(
        customer_id=customer.id,
        username=username,
        password_hash=await passwords.hash(password),
        name=name,
        permission=permission,
    )
    token = new_accesskey()
    key = Accesskey(
        customer_id=customer.id,
        name="bootstrap",
        detail="created with the customer",
        token_hash=hash_token(token),
        token_prefix=token[:11],
        permission=permission,
    )
    session.add_all([agent, key])
    await session.flush()
    return NewCustomer(customer, agent, password, token)


async def bootstrap(db: Database, settings: Settings) -> NewCustomer | None:
    """First start: create the admin customer (platform administrator) and give it the seed's number."""
    async with db.session() as session:
        count = (await session.execute(select(func.count()).select_from(Customer))).scalar_one()
        if count:
            return None
        s = settings
        created = await create_customer(
            session,
            passwords=Passwords.from_settings(s),
            initial_balance=s.initial_balance,
            name="admin",
            username=s.admin_username,
            password=s.admin_password or None,
            permission=PLATFORM_ADMIN,
        )
        # The development inventory's first number is the admin's, so the tutorial's source works at once.
        inventory = [n.strip() for n in s.number_inventory.split(",") if n.strip()]
        if inventory:
            session.add(
                Number(
                    customer_id=created.customer.id,
                    number=inventory[0],
                    name="development number",
                    tm_purchase=utcnow(),
                )
            )
        await session.commit()
        return created
