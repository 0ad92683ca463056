"""Write <root>/keys.json for ccxt's test runner so that `cryptocom` or `binance` points at the local
simulated exchange (tps19 exchange [--dialect binance]).

ccxt's testMainClass.expandSettings() deep-extends every key of keys.json[exchangeId] onto the
exchange instance (set_exchange_prop), so a nested 'urls' dict overrides exchange.urls and an
'options' dict exchange.options before loadMarkets. Credentials are added only with --private.
usage: make_keys.py ROOT PORT [--id cryptocom|binance] [--private] [--spot-only] [--api-key K --secret S]
"""
import argparse, json, os, sys

p = argparse.ArgumentParser()
p.add_argument('root'); p.add_argument('port', type=int)
p.add_argument('--id', default='cryptocom', choices=['cryptocom', 'binance'])
p.add_argument('--host', default='127.0.0.1')
p.add_argument('--private', action='store_true')
p.add_argument('--spot-only', action='store_true', help="declare has.swap/has.future false (the sim lists spot markets only)")
p.add_argument('--api-key', default='tps19-demo-key')
p.add_argument('--secret', default='tps19-demo-secret')
a = p.parse_args()

sys.path.insert(0, os.path.join(a.root, 'python'))
import ccxt.pro as ccxtpro  # the copied package, same version as the venv

http = 'http://%s:%d' % (a.host, a.port)
ws = 'ws://%s:%d' % (a.host, a.port)

settings = {}
if a.id == 'cryptocom':
    def rewrite(v):
        if isinstance(v, dict):
            return {k: rewrite(x) for k, x in v.items()}
        if isinstance(v, str):
            return v.replace('https://api.crypto.com', http)
        return v

    api = rewrite(ccxtpro.cryptocom().urls['api'])   # pro describe() = rest urls + ws urls
    api['ws'] = {'public': ws + '/exchange/v1/market', 'private': ws + '/exchange/v1/user'}
else:
    # the same rewrite TPS19 uses (tps19.engine.venue.point_ccxt_binance), written out here so the
    # suite's copy of ccxt gets plain URLs: every REST root keeps its path on the sim's host
    ex = ccxtpro.binance()
    api = {}
    for name, url in ex.urls['api'].items():
        if isinstance(url, str) and url.startswith('https://') and '.binance.com' in url:
            api[name] = http + '/' + url.split('://', 1)[1].split('/', 1)[1]
    wsd = dict(ex.urls['api']['ws'])
    wsd['spot'] = wsd['margin'] = ws + '/ws'
    wsd['ws-api'] = dict(wsd['ws-api'], spot=ws + '/ws-api/v3')
    api['ws'] = wsd
    # TPS19's client options for Binance spot: no futures markets, no currency list (sapi)
    settings['options'] = {'fetchMarkets': {'types': ['spot']}, 'fetchCurrencies': False}
settings['urls'] = {'api': api}
if a.spot_only:
    settings['has'] = {'swap': False, 'future': False, 'option': False, 'margin': False}
if a.private:
    settings['apiKey'] = a.api_key
    settings['secret'] = a.secret
with open(os.path.join(a.root, 'keys.json'), 'w') as f:
    json.dump({a.id: settings}, f, indent=2)
print(json.dumps(settings['urls']))
