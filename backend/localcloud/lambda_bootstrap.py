"""A warm Lambda "container" for the local cloud: one process, one function, many invocations.

Run as a script (not imported from skydeck) so the deployed code, not the installed package, is what
runs, under `python -I -S`: its path is the package, then the layers and the runtime's folder that
follow in argv, as /var/task, /opt/python and /var/runtime are on Lambda.
Protocol: the parent writes one JSON line per invocation on stdin; the answer is one JSON line
on a private pipe (fd given in argv). The handler's own prints go to stderr, i.e. the function's log.
"""

import importlib
import json
import os
import sys
import traceback


def main() -> None:
    code_dir, handler_path, out_fd = sys.argv[1], sys.argv[2], int(sys.argv[3])
    out = os.fdopen(out_fd, "w", buffering=1)
    sys.stdout = sys.stderr
    sys.path[:0] = [code_dir, *sys.argv[4:]]
    module_name, _, func_name = handler_path.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), func_name)
    except Exception as exc:  # an import failure is the function's error, reported on every call
        handler = None
        init_error = {
            "errorMessage": f"Unable to import {handler_path}: {exc}",
            "errorType": "Runtime.ImportModuleError",
        }
    for line in sys.stdin:
        request = json.loads(line)
        if handler is None:
            out.write(json.dumps({"ok": False, "error": init_error}) + "\n")
            continue
        context = type(
            "Context",
            (),
            {
                "function_name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""),
                "aws_request_id": request["id"],
                "memory_limit_in_mb": os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
                "get_remaining_time_in_millis": staticmethod(lambda r=request: int(r.get("remaining_ms", 3000))),
            },
        )()
        try:
            result = handler(request["event"], context)
            out.write(json.dumps({"ok": True, "result": result}, default=str) + "\n")
        except Exception as exc:
            traceback.print_exc()
            out.write(
                json.dumps(
                    {
                        "ok": False,
                        "error": {
                            "errorMessage": str(exc),
                            "errorType": type(exc).__name__,
                            "stackTrace": traceback.format_exception(exc)[-5:],
                        },
                    }
                )
                + "\n"
            )


if __name__ == "__main__":
    main()
