"""Command line: ``voipbin serve``, ``voipbin customer create``, ``voipbin accesskey create``."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import select

from voipbin import logcontext
from voipbin.config import Settings, get_settings
from voipbin.store.db import Database


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from voipbin.app import create_app

    settings = get_settings()
    logcontext.configure(settings.log_level, settings.log_format)
    loop = "auto"
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        pass
    uvicorn.run(
        create_app(settings, owns_process=True),
        host=args.host or settings.http_host,
        port=args.port or settings.http_port,
        loop=loop,
        log_level=settings.log_level.lower(),
        # JSON: uvicorn's loggers propagate to our root handler instead of printing their own format.
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
    )
    return 0


async def _with_db(fn: Callable[[Database, Settings], Awaitable[int]]) -> int:
    from voipbin.node import print_bootstrap
    from voipbin.tenants import bootstrap

    settings = get_settings()
    db = Database(settings.effective_database_url)
    await db.migrate()
    if created := await bootstrap(db, settings):
        print_bootstrap(created)
    try:
        return await fn(db, settings)
    finally:
        await db.close()


def _customer_create(args: argparse.Namespace) -> int:
    from voipbin.security import Passwords
    from voipbin.tenants import create_customer

    async def run(db: Database, settings: Settings) -> int:
        from voipbin.store.tables import Agent

        async with db.session() as session:
            taken = (await session.execute(select(Agent.id).where(Agent.username == args.username))).first()
            if taken:
                print(f"error: username {args.username!r} is taken", file=sys.stderr)
                return 1
            created = await create_customer(
                session,
                passwords=Passwords.from_settings(settings),
                initial_balance=settings.initial_balance,
                name=args.name,
                username=args.username,
                password=args.password,
                email=args.email,
            )
            await session.commit()
        print(
            f"customer:   {created.customer.id}\nusername:   {created.agent.username}\n"
            f"password:   {created.password}\naccesskey:  {created.accesskey}"
        )
        return 0

    return asyncio.run(_with_db(run))


def _accesskey_create(args: argparse.Namespace) -> int:
    from voipbin.security import hash_token, new_accesskey
    from voipbin.store.tables import Accesskey, Agent, Customer

    async def run(db: Database, _settings: Settings) -> int:
        async with db.session() as session:
            permission = "customer_admin"
            if args.customer_id:
                try:
                    customer = await session.get(Customer, uuid.UUID(args.customer_id))
                except ValueError:
                    customer = None
                customer_id = customer.id if customer else None
            else:
                agent = (await session.execute(select(Agent).where(Agent.username == args.username))).scalar()
                customer_id = agent.customer_id if agent else None
                permission = agent.permission if agent else permission
            if customer_id is None:
                print("error: no such customer", file=sys.stderr)
                return 1
            token = new_accesskey()
            session.add(
                Accesskey(
                    customer_id=customer_id,
                    name=args.name,
                    token_hash=hash_token(token),
                    token_prefix=token[:11],
                    permission=permission,
                )
            )
            await session.commit()
        print(token)
        return 0

    return asyncio.run(_with_db(run))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voipbin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the platform (HTTP API, SIP, RTP)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(fn=_serve)

    customer = sub.add_parser("customer", help="manage customers").add_subparsers(
        dest="action", required=True
    )
    cc = customer.add_parser("create", help="create a customer with a login and an access key")
    cc.add_argument("--name", required=True)
    cc.add_argument("--username", required=True)
    cc.add_argument("--password", default=None, help="generated when omitted")
    cc.add_argument("--email", default="")
    cc.set_defaults(fn=_customer_create)

    accesskey = sub.add_parser("accesskey", help="manage access keys").add_subparsers(
        dest="action", required=True
    )
    ac = accesskey.add_parser("create", help="create an access key and print it")
    who = ac.add_mutually_exclusive_group(required=True)
    who.add_argument("--username")
    who.add_argument("--customer-id")
    ac.add_argument("--name", default="cli")
    ac.set_defaults(fn=_accesskey_create)

    from voipbin.phone import add_phone_parser

    add_phone_parser(sub)

    args = parser.parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
