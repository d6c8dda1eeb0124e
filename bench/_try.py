import os, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django; django.setup()
from django.conf import settings; settings.DEBUG=False
from bench.scratch import Server
from bench.settlement import ensure_template, settle_in_child
server = Server.from_environment()
n = int(sys.argv[1])
db, how = ensure_template(server, n)
print(db, how, flush=True)
print(settle_in_child(server, db))
