# moto_server loads this at start-up as `sitecustomize` (PYTHONPATH=<this dir>): it gives
# moto's ECR tokens an expiry 12 h from now instead of its fixed 2015-01-01 (moto 5.2 builds it
# with `datetime(2015, 1, 1, ...)` in `moto.ecr.responses`). Without it no cache would ever
# serve a moto token. Used by bench/ecr.sh (a release build, which has no test clock;
# tests/ecr/ sets the binary's clock instead).
#
# It also turns Nagle's algorithm off on moto's connections, as a real HTTPS front end does:
# werkzeug writes a response's headers and body in two sends, and with Nagle on the body waits
# for the client's ACK of the headers, which the client's kernel delays (it expects to
# piggyback it on its next request), until moto closes the connection ~10 ms later. That wait
# was in every cold figure of bench/ecr.sh, for both tools alike.
import datetime as _dt
import moto.ecr.responses as _responses


class _Datetime(_dt.datetime):
    def __new__(cls, *args, **kwargs):
        if args[:3] == (2015, 1, 1):
            tz = kwargs.get("tzinfo")
            t = _dt.datetime.now(tz) + _dt.timedelta(hours=12)
            return _dt.datetime(t.year, t.month, t.day, t.hour, t.minute, t.second, tzinfo=tz)
        return _dt.datetime.__new__(cls, *args, **kwargs)


_responses.datetime = _Datetime


import werkzeug.serving as _serving

_serving.WSGIRequestHandler.disable_nagle_algorithm = True
