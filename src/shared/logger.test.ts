import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger, prettyLine, setLogLevel } from './logger.js';

describe('logger', () => {
  it('writes JSON lines unless the stream is a terminal (auto), readable lines on a terminal', () => {
    const lines: string[] = [];
    const json = createLogger('info', 'auto', { write: (line) => void lines.push(line), isTTY: false });
    json.info({ requestId: 'r-1' }, 'hello');
    assert.equal(JSON.parse(lines[0] ?? '').msg, 'hello');
    const terminal = createLogger('info', 'auto', { write: (line) => void lines.push(line), isTTY: true });
    terminal.warn({ requestId: 'r-2', route: 'manifest', status: 500 }, 'careful');
    const escape = String.fromCharCode(27);
    assert.equal((lines[1] ?? '').replace(/^\d\d:\d\d:\d\d\.\d{3} /, ''), `${escape}[33mWARN ${escape}[0m careful requestId=r-2 route=manifest status=500\n`);
  });

  it('formats a JSON line: time, level, message, fields; errors with their message and first frames; non-JSON unchanged', () => {
    const line = JSON.stringify({
      level: 50,
      time: Date.UTC(2026, 0, 2, 3, 4, 5, 6),
      msg: 'failed',
      service: 'berth',
      err: { message: 'boom', stack: 'Error: boom\n    at a (x.js:1:1)\n    at b (y.js:2:2)' },
      path: 'with space',
    });
    assert.equal(prettyLine(line, false), '03:04:05.006 ERROR failed err="boom" path="with space"\n    at a (x.js:1:1)\n    at b (y.js:2:2)\n');
    assert.equal(prettyLine('not json\n', false), 'not json\n');
  });

  it('changes the level of the root and of the children alive', () => {
    const lines: string[] = [];
    const root = createLogger('info', 'json', { write: (line) => void lines.push(line) });
    const child = root.child({ component: 'webhooks' });
    child.debug('hidden');
    setLogLevel(root, 'debug');
    child.debug('shown');
    root.child({ later: true }).debug('also shown');
    assert.deepEqual(
      lines.map((l) => JSON.parse(l).msg),
      ['shown', 'also shown'],
    );
  });
});
