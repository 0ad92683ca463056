"""Helper for the ccxt suite run against the tps19 simulated exchange (not part of ccxt's suite).

  sim_client.py seed PORT      put real data into the demo account, so that fetchOrders /
                               fetchOpenOrders / fetchClosedOrders / fetchMyTrades validate
                               non-empty lists: one resting limit buy (open), one cancelled
                               limit buy, a market buy + market sell (filled, with trades).
  sim_client.py activity PORT SECONDS
                               keep placing/cancelling/filling small BTC/USDT orders for
                               SECONDS, so ccxt's private ws tests (watchOrders, watchMyTrades,
                               watchBalance) receive updates; they block until one arrives.
Uses an ordinary ccxt client (cryptocom, or binance with SUITE_EXCHANGE=binance) with its urls
pointed at the sim.
"""
import asyncio
import os
import sys

import ccxt.async_support as ccxt

KEY, SECRET = 'tps19-demo-key', 'tps19-demo-secret'
SYMBOL = 'BTC/USDT'


def client(port):
    base = 'http://127.0.0.1:%d' % port
    if os.environ.get('SUITE_EXCHANGE') == 'binance':
        ex = ccxt.binance({'apiKey': KEY, 'secret': SECRET, 'enableRateLimit': False,
                           'options': {'fetchMarkets': {'types': ['spot']}, 'fetchCurrencies': False}})
        for name, url in list(ex.urls['api'].items()):
            if isinstance(url, str) and url.startswith('https://') and '.binance.com' in url:
                ex.urls['api'][name] = base + '/' + url.split('://', 1)[1].split('/', 1)[1]
        return ex
    ex = ccxt.cryptocom({'apiKey': KEY, 'secret': SECRET, 'enableRateLimit': False})

    def rw(v):
        if isinstance(v, dict):
            return {k: rw(x) for k, x in v.items()}
        return v.replace('https://api.crypto.com', base) if isinstance(v, str) else v

    ex.urls['api'] = rw(ex.urls['api'])
    return ex


async def best(ex):
    ob = await ex.fetch_order_book(SYMBOL, 10)
    return ob['bids'][0][0], ob['asks'][0][0]


async def seed(port):
    ex = client(port)
    try:
        await ex.load_markets()
        try:
            for o in await ex.fetch_open_orders(SYMBOL):
                await ex.cancel_order(o['id'], SYMBOL)
        except Exception as e:  # nothing open is fine
            print('seed: cancel_all_orders:', type(e).__name__, e)
        bid, ask = await best(ex)
        far = ex.price_to_precision(SYMBOL, bid * 0.9)
        o1 = await ex.create_order(SYMBOL, 'limit', 'buy', 0.001, float(far))
        o2 = await ex.create_order(SYMBOL, 'limit', 'buy', 0.001, float(far))
        await ex.cancel_order(o2['id'], SYMBOL)
        o3 = await ex.create_order(SYMBOL, 'market', 'buy', 0.001)
        o4 = await ex.create_order(SYMBOL, 'market', 'sell', 0.001)
        # a marketable limit (taker) sell and a limit buy that crosses
        o5 = await ex.create_order(SYMBOL, 'limit', 'sell', 0.001, float(ex.price_to_precision(SYMBOL, bid * 0.99)))
        o6 = await ex.create_order(SYMBOL, 'limit', 'buy', 0.001, float(ex.price_to_precision(SYMBOL, ask * 1.01)))
        await asyncio.sleep(0.5)
        print('seed: open', o1['id'], 'cancelled', o2['id'], 'filled', o3['id'], o4['id'], o5['id'], o6['id'])
        print('seed: open orders', len(await ex.fetch_open_orders(SYMBOL)),
              'history', len(await ex.fetch_orders(SYMBOL)),
              'my trades', len(await ex.fetch_my_trades(SYMBOL)))
    finally:
        await ex.close()


async def activity(port, seconds):
    ex = client(port)
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    n = 0
    try:
        await ex.load_markets()
        while loop.time() < end:
            try:
                bid, ask = await best(ex)
                side = 'buy' if n % 2 == 0 else 'sell'
                await ex.create_order(SYMBOL, 'market', side, 0.0005)
                o = await ex.create_order(SYMBOL, 'limit', 'buy', 0.0005, float(ex.price_to_precision(SYMBOL, bid * 0.95)))
                await asyncio.sleep(0.3)
                await ex.cancel_order(o['id'], SYMBOL)
                n += 1
            except Exception as e:
                print('activity:', type(e).__name__, str(e)[:200], flush=True)
            await asyncio.sleep(0.7)
    finally:
        print('activity: %d rounds' % n, flush=True)
        await ex.close()


if __name__ == '__main__':
    cmd, port = sys.argv[1], int(sys.argv[2])
    if cmd == 'seed':
        asyncio.run(seed(port))
    elif cmd == 'activity':
        asyncio.run(activity(port, float(sys.argv[3])))
    else:
        sys.exit('usage: sim_client.py seed PORT | activity PORT SECONDS')
