"""Broker benchmark; same as ``haeryu bench broker``. See haeryu.bench.broker."""

from haeryu.bench.broker import main

if __name__ == "__main__":
    main()
