"""The boot record of a fleet host (boot.json), kept by setup.sh one step at a time.

Run by the system's python3 before the executor's environment exists, so it needs the standard
library only and runs on any Python 3 (a host whose AMI interpreter is too old still reports why).

    boot_record.py FILE start --instance ID --ami AMI --instance-type T --python PATH
    boot_record.py FILE step NAME STATE DETAIL [--seconds N]
    boot_record.py FILE note KEY VALUE
    boot_record.py FILE finish STATE [--step NAME] [--reason TEXT]
    boot_record.py FILE get KEY
"""

import argparse
import json
import os
import sys
import time


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _save(path, record):
    record["updated"] = _now()
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def main(argv):
    parser = argparse.ArgumentParser(prog="boot_record.py")
    parser.add_argument("file")
    sub = parser.add_subparsers(dest="command")
    start = sub.add_parser("start")
    for name in ("--instance", "--ami", "--instance-type", "--python"):
        start.add_argument(name, default="")
    step = sub.add_parser("step")
    step.add_argument("name")
    step.add_argument("state", choices=["running", "ok", "failed"])
    step.add_argument("detail")
    step.add_argument("--seconds", type=int)
    note = sub.add_parser("note")
    note.add_argument("key")
    note.add_argument("value")
    finish = sub.add_parser("finish")
    finish.add_argument("state", choices=["ok", "failed"])
    finish.add_argument("--step", default="")
    finish.add_argument("--reason", default="")
    get = sub.add_parser("get")
    get.add_argument("key")
    args = parser.parse_args(argv)

    if args.command == "get":
        value = _load(args.file).get(args.key, "")
        print(value if isinstance(value, str) else json.dumps(value))
        return 0
    record = _load(args.file)
    if args.command == "start":
        record = {
            "instance_id": args.instance, "ami": args.ami, "instance_type": args.instance_type,
            "python_path": args.python, "state": "booting", "step": "", "reason": "", "steps": [],
            "started": _now(),
        }  # fmt: skip
    elif args.command == "step":
        entry = {"name": args.name, "state": args.state, "detail": args.detail}
        if args.seconds is not None:
            entry["seconds"] = args.seconds
        steps = [s for s in record.get("steps", []) if s.get("name") != args.name]
        record["steps"] = steps + [entry]
        record["step"] = args.name
    elif args.command == "note":
        record[args.key] = True if args.value == "true" else args.value
    elif args.command == "finish":
        record["state"] = args.state
        record["step"] = args.step if args.state == "failed" else ""
        record["reason"] = args.reason
        record["finished"] = _now()
    else:
        parser.error("a command is needed")
    _save(args.file, record)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
