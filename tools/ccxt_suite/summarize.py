"""Summarize the logs of ccxt's test runner (tests_init.py ... --info) phase by phase.

usage: summarize.py PHASE=LOGFILE [PHASE=LOGFILE ...]
Per method: PASS ('[INFO] TESTING DONE'), FAIL ('[TEST_FAILURE] <id> <method>' + the last line of
its traceback, or started but never finished before the phase timeout = a hung watch*), SKIP
(UNSUPPORTED_TEST = exchange.has[m] is false/None, UNIMPLEMENTED_TEST = ccxt ships no test file,
SKIPPED_TEST = skip-tests.json, NOT_SUPPORTED = method raised NotSupported, auth problem on a
public method), WARN ('[TEST_WARNING]': repeated network errors, ccxt does not fail those).
IGNORED_TEST (filtered out by a method argument) is not counted. loadMarkets is only counted in
phases whose name contains 'loadMarkets' or 'rest-public' (every phase loads markets first).
Prints a table and, last, 'N passed, M failed, K skipped'. Exit status 1 if anything failed.
"""
import os
import re
import sys

ID = os.environ.get('SUITE_EXCHANGE', 'cryptocom')
START = re.compile(r'^\[INFO\] TESTING\s+%s (\w+) \((.*)\)\s*$' % ID)
DONE = re.compile(r'^\[INFO\] TESTING DONE\s+%s (\w+)\s*$' % ID)
SKIP = re.compile(r'^\[INFO\] (UNSUPPORTED_TEST|UNIMPLEMENTED_TEST|SKIPPED_TEST|IGNORED_TEST)\s+%s (\w+)' % ID)
NOTSUP = re.compile(r'^\[INFO\] NOT_SUPPORTED %s (\w+)' % ID)
AUTH = re.compile(r'^\[INFO\] %s (\w+) .*Authentication problem for public method' % ID)
FAIL = re.compile(r'^\[TEST_FAILURE\] %s (\w+) ' % ID)
WARN = re.compile(r'^\[TEST_WARNING\] %s (\w+) ' % ID)
CAUSE = re.compile(r'^\[TEST_WARNING\] TIMEOUT_CAUSE (.*)')
LOST = re.compile(r'^future: <Future finished exception=(.*)>\s*$')  # 'Future exception was never retrieved'


def block_reason(lines, i):
    """Last exception line of the traceback block that starts at lines[i]."""
    first = lines[i]
    last = None
    j = i + 1
    while j < len(lines) and not lines[j].startswith('['):  # chained tracebacks: keep the last
        s = lines[j].strip()
        if re.match(r'^[\w.]+(Error|Exception|Exchange\w*|NotSupported|BadRequest|BadSymbol|AuthenticationError|InvalidOrder|OrderNotFound|InsufficientFunds)\b.*:', s) or s.startswith('AssertionError'):
            last = s
        j += 1
    if last is None:  # single-line failure
        m = re.search(r'\[(\w+)\] (.*)$', first)
        last = m.group(0) if m else first
    return last


def parse(phase, path):
    try:
        lines = open(path, encoding='utf-8', errors='replace').read().splitlines()
    except OSError as e:
        return {'(phase)': ('FAIL', 'no log: %s' % e)}, []
    res, started, causes, lost = {}, {}, [], []
    crashed = None
    for i, ln in enumerate(lines):
        m = START.match(ln)
        if m:
            started[m.group(1)] = m.group(2)
            continue
        m = DONE.match(ln)
        if m and m.group(1) in started:
            res.setdefault(m.group(1), ('PASS', ''))
            continue
        m = SKIP.match(ln)
        if m:
            kind, meth = m.group(1), m.group(2)
            if kind != 'IGNORED_TEST' and not (meth == 'loadMarkets' and kind == 'UNIMPLEMENTED_TEST'):
                res[meth] = ('SKIP', kind)
            continue
        m = NOTSUP.match(ln)
        if m:
            res[m.group(1)] = ('SKIP', 'NOT_SUPPORTED: ' + ln.split('] ', 2)[-1][-200:])
            continue
        m = AUTH.match(ln)
        if m:
            res[m.group(1)] = ('SKIP', 'auth error on public method')
            continue
        m = FAIL.match(ln)
        if m and m.group(1) not in ('PUBLIC_TESTS', 'PRIVATE_TESTS'):
            res[m.group(1)] = ('FAIL', block_reason(lines, i))
            continue
        m = WARN.match(ln)
        if m:
            res[m.group(1)] = ('WARN', block_reason(lines, i))
            continue
        m = CAUSE.match(ln)
        if m and m.group(1) not in causes:
            causes.append(m.group(1))
        m = LOST.match(ln)
        if m and m.group(1) not in lost:
            lost.append(m.group(1))
        if '<UNHANDLED EXCEPTION>' in ln or ln.startswith('[TEST_FAILURE] <class'):
            crashed = ln
    for meth in started:
        if meth not in res:
            why = 'never finished before the phase timeout (watch did not resolve)'
            if lost:
                why += '; unretrieved background error: ' + '; '.join(x[:200] for x in lost)
            if causes:
                why += '; harness watchdog: ' + causes[-1][:300]
            res[meth] = ('FAIL', why)
    if crashed:
        res['(runner crash)'] = ('FAIL', crashed[:300])
    if 'loadMarkets' in res and not ('loadMarkets' in phase or 'rest-public' in phase) and res['loadMarkets'][0] == 'PASS':
        del res['loadMarkets']
    return res, causes


def main(argv):
    rows = []
    for arg in argv:
        phase, path = arg.split('=', 1)
        res, _ = parse(phase, path)
        for meth, (status, why) in res.items():
            rows.append((phase, meth, status, why))
    w = max([len(r[1]) for r in rows] + [10])
    pw = max([len(r[0]) for r in rows] + [5])
    order = {'FAIL': 0, 'WARN': 1, 'PASS': 2, 'SKIP': 3}
    phases = []
    for r in rows:
        if r[0] not in phases:
            phases.append(r[0])
    for ph in phases:
        for phase, meth, status, why in sorted([r for r in rows if r[0] == ph], key=lambda r: (order[r[2]], r[1])):
            print('%-*s  %-*s  %-4s  %s' % (pw, phase, w, meth, status, why))
    n = {k: sum(1 for r in rows if r[2] == k) for k in order}
    tail = ' (+%d warnings)' % n['WARN'] if n['WARN'] else ''
    print('%d passed, %d failed, %d skipped%s' % (n['PASS'], n['FAIL'], n['SKIP'], tail))
    return 1 if n['FAIL'] else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
