import os, sys, time, cProfile, pstats
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django; django.setup()
from django.conf import settings; settings.DEBUG=False
from datetime import timedelta
from voucher import services
from voucher.clock import seoul_today
from django.db import connection
import collections
times = collections.Counter(); counts = collections.Counter()
def wrap(execute, sql, params, many, context):
    t=time.perf_counter()
    try: return execute(sql, params, many, context)
    finally:
        key=sql[:90]; times[key]+=time.perf_counter()-t; counts[key]+=1
t=time.perf_counter()
with connection.execute_wrapper(wrap):
    cProfile.run("services.settle_day(day=seoul_today()-timedelta(days=1))", "/tmp/settle.prof")
print("total", time.perf_counter()-t)
for k,v in times.most_common(15): print(f"{v:8.3f}s {counts[k]:6d} {k}")
pstats.Stats("/tmp/settle.prof").sort_stats("cumulative").print_stats(25)
