"""`neutrino`: administration commands (`user add|list|remove`, `agent-swarm`, `lab ...`)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Sequence

from neutrino.api.auth import BCRYPT_MAX_BYTES, UserFile
from neutrino.cmd import lab, swarm
from neutrino.cmd.common import load_config


def _users(args: argparse.Namespace) -> UserFile:
    conf_args = [a for f in args.config_file for a in ("--config-file", f)]
    conf = load_config(conf_args, "neutrino")
    return UserFile(args.users_file or conf.http_basic_auth_user_file)


def user_add(args: argparse.Namespace) -> int:
    """Add or replace a user."""
    password = args.password
    if password is None:
        password = getpass.getpass(f"Password for {args.name}: ")
    if not password:
        print("A password is required", file=sys.stderr)
        return 2
    if len(password.encode()) > BCRYPT_MAX_BYTES:
        print(f"A password is at most {BCRYPT_MAX_BYTES} bytes (bcrypt)", file=sys.stderr)
        return 2
    user = _users(args).add(args.name, password, args.project_id, args.role or ["member"])
    print(f"User {args.name}: project {user['project_id']}, roles {','.join(user['roles'])}")
    return 0


def user_list(args: argparse.Namespace) -> int:
    """List users with their project and roles."""
    users = _users(args).users()
    print(f"{'name':<20} {'project_id':<34} roles")
    for name in sorted(users):
        print(f"{name:<20} {users[name]['project_id']:<34} {','.join(users[name]['roles'])}")
    return 0


def user_remove(args: argparse.Namespace) -> int:
    """Remove a user."""
    if not _users(args).remove(args.name):
        print(f"No user {args.name}", file=sys.stderr)
        return 1
    print(f"Removed user {args.name}")
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line."""
    top = argparse.ArgumentParser(prog="neutrino", description=__doc__)
    top.add_argument("--config-file", action="append", default=[],
                     help="neutrino configuration file (repeatable)")
    top.add_argument("--users-file", help="users file (default: http_basic_auth_user_file)")
    commands = top.add_subparsers(dest="command", required=True)
    user = commands.add_parser("user", help="manage http_basic users")
    actions = user.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add or replace a user")
    add.add_argument("name")
    add.add_argument("--password", help="the password (asked for when absent)")
    add.add_argument("--project-id", help="the user's project (a new id when absent)")
    add.add_argument("--role", action="append", help="a role (repeatable; default member)")
    add.set_defaults(func=user_add)
    actions.add_parser("list", help="list users").set_defaults(func=user_list)
    remove = actions.add_parser("remove", help="remove a user")
    remove.add_argument("name")
    remove.set_defaults(func=user_remove)
    swarm_parser = commands.add_parser("agent-swarm", help="simulated agents, for load tests")
    swarm.add_arguments(swarm_parser)
    swarm_parser.set_defaults(func=lambda args: print(
        json.dumps(asyncio.run(swarm.run(args)), indent=2)) or 0)
    lab_parser = commands.add_parser("lab", help="a multi-host cloud on this machine")
    lab.add_arguments(lab_parser)
    lab_parser.set_defaults(run=lab.run)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command."""
    args = parser().parse_args(argv)
    if hasattr(args, "run"):
        return int(args.run(args))
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
