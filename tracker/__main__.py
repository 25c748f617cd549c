from tracker.cli import main

if __name__ == "__main__":  # replay's partition processes import this module again
    raise SystemExit(main())
