import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { auditCloudEvent } from './cloudevents.js';
import { frame, syslogMessage } from './syslog.js';

const entry = {
  id: 42,
  at: Date.UTC(2026, 4, 6, 7, 8, 9, 10),
  event: 'registry.push',
  principalId: 'p-1',
  principalName: 'ci "bot"]',
  clientAddress: '10.0.0.1',
  repository: 'team/app',
  detail: { reference: 'v1' },
};

describe('audit sinks', () => {
  it('syslog: an RFC 5424 message with the entry in structured data (escaped) and as JSON', () => {
    const message = syslogMessage(entry, 13);
    assert.match(
      message,
      /^<109>1 2026-05-06T07:08:09\.010Z \S+ berth \d+ audit \[berth@32473 id="42" event="registry\.push" principal="ci \\"bot\\"\\]" principalId="p-1" repository="team\/app" client="10\.0\.0\.1"\] \ufeff\{/,
    );
    assert.deepEqual(JSON.parse(message.slice(message.indexOf('\ufeff') + 1)).detail, { reference: 'v1' });
    assert.equal(syslogMessage({ ...entry, event: 'login.failed' }, 13).slice(0, 5), '<108>', 'refusals and failures are warnings');
    const framed = frame('héllo');
    assert.equal(framed.toString('utf8'), '6 héllo', 'the length counts bytes, not characters');
  });

  it('CloudEvents: one event per entry, its id stable for the entry', () => {
    const event = auditCloudEvent(entry);
    assert.deepEqual(
      { id: event.id, type: event.type, source: event.source, subject: event.subject, time: event.time, specversion: event.specversion },
      {
        id: 'audit-42',
        type: 'io.berth.audit.registry.push',
        source: '/api/v1/audit',
        subject: 'team/app',
        time: '2026-05-06T07:08:09.010Z',
        specversion: '1.0',
      },
    );
    assert.equal(event.data.principalName, 'ci "bot"]');
    assert.deepEqual(auditCloudEvent(entry), event);
  });
});
