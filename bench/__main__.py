"""`python -m bench [scale | dashboard | reconcile | guards] [--help]`: the benchmark programs
(bench/README.md)."""

import sys


def main(argv: list[str]) -> int:
    program = argv[0] if argv[:1] in (["scale"], ["dashboard"], ["reconcile"], ["guards"]) else ""
    if program == "scale":  # the fleet-scale benchmark
        from bench.scale.main import main as chosen  # noqa: PLC0415 - only that program needs it
    elif program == "dashboard":  # the dashboard's pages at fleet size (needs Playwright)
        from bench.dashboard import main as chosen  # noqa: PLC0415
    elif program == "reconcile":  # the IoTDA reconciler reading a large task
        from bench.reconcile import main as chosen  # noqa: PLC0415
    elif program == "guards":  # what guards and a dead webhook receiver cost ingestion
        from bench.guards import main as chosen  # noqa: PLC0415
    else:
        from bench.main import main as chosen  # noqa: PLC0415
    return chosen(argv[1:] if program else argv)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
