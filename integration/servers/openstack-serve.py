#!/usr/bin/python3
"""openstack-serve.py: serve Keystone or Barbican with waitress on 127.0.0.1.

    openstack-serve.py keystone CONF PORT THREADS
    openstack-serve.py barbican CONF PASTE_INI PORT THREADS

Started by openstack.sh with Debian's /usr/bin/python3 (the Debian packages'
modules are not visible to other interpreters). Stays in the foreground;
SIGTERM ends it. Plain HTTP: the listener is on the loopback interface only.
"""

import os
import signal
import sys
import warnings


def keystone_app(conf):
    # keystone's initialiser parses sys.argv with oslo.config: our own
    # arguments would be taken as (unknown) keystone options.
    sys.argv = sys.argv[:1]
    # Read by keystone.server.flask.core._get_config_files(); full paths are
    # used as they are when OS_KEYSTONE_CONFIG_DIR is unset.
    os.environ.pop("OS_KEYSTONE_CONFIG_DIR", None)
    os.environ["OS_KEYSTONE_CONFIG_FILES"] = conf
    from keystone.server.wsgi import initialize_public_application

    return initialize_public_application()


def barbican_app(conf, paste_ini):
    sys.argv = sys.argv[:1]
    # Barbican 15 warns about each of its own legacy policy rules, which the
    # tests use on purpose (enforce_new_defaults = false).
    warnings.filterwarnings("ignore", message="Policy .* was deprecated", category=UserWarning)
    # Importing barbican.common.config parses the configuration once with the
    # default search path (/etc/barbican/...); parse again with ours before
    # anything reads it. The app factory sets up the database engine and
    # logging from this configuration.
    from barbican.common import config

    config.CONF(
        args=["--config-file", conf],
        project="barbican",
        prog="barbican",
        default_config_files=[],
        default_config_dirs=[],
    )
    from paste import deploy

    return deploy.loadapp("config:" + paste_ini, name="main")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    what = sys.argv[1]
    if what == "keystone" and len(sys.argv) == 5:
        conf, port, threads = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        app = keystone_app(conf)
    elif what == "barbican" and len(sys.argv) == 6:
        conf, paste_ini = sys.argv[2], sys.argv[3]
        port, threads = int(sys.argv[4]), int(sys.argv[5])
        app = barbican_app(conf, paste_ini)
    else:
        sys.exit(__doc__)

    import waitress

    # Exit promptly on SIGTERM (stop_daemon), without a traceback.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("%s listening on http://127.0.0.1:%d (%d threads)" % (what, port, threads), flush=True)
    waitress.serve(
        app,
        host="127.0.0.1",
        port=port,
        threads=threads,
        ident=what,
        # Tests open many short connections; do not keep idle ones for long.
        channel_timeout=60,
    )


if __name__ == "__main__":
    main()
