"""``huey_consumer -k greenlet`` as Huey's documentation runs it: gevent's monkey patch
first, then the consumer (the plain console script warns and blocks on sleeps)."""

from gevent import monkey

monkey.patch_all()

from huey.bin.huey_consumer import consumer_main  # noqa: E402  (after the patch)

if __name__ == "__main__":
    consumer_main()
