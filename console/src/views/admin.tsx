/** Administration (owners): one section per resource of `/api/v1`. */
import { links } from '../router';
import { AuditLog } from './admin-audit';
import { Imports } from './admin-imports';
import { Principal, Principals } from './admin-principals';
import { Settings } from './admin-settings';
import { SyncRule, SyncRules } from './admin-sync';
import { TokenTest } from './admin-token-test';
import { Webhook, Webhooks } from './admin-webhooks';

const sections: Array<[string, string]> = [
  ['principals', 'Principals'],
  ['token-test', 'Test a token'],
  ['webhooks', 'Webhooks'],
  ['sync', 'Sync'],
  ['imports', 'Imports'],
  ['audit', 'Audit log'],
  ['settings', 'Settings'],
];

export function Admin({ section, item }: { section: string; item: string | undefined }) {
  return (
    <div class="admin">
      <nav class="sub" aria-label="Administration">
        {sections.map(([key, label]) => (
          <a key={key} href={links.admin(key)} aria-current={section === key ? 'page' : undefined}>
            {label}
          </a>
        ))}
      </nav>
      <div class="admin-body">{body(section, item)}</div>
    </div>
  );
}

function body(section: string, item: string | undefined) {
  switch (section) {
    case 'principals':
      return item ? <Principal name={item} /> : <Principals />;
    case 'token-test':
      return <TokenTest />;
    case 'webhooks':
      return item ? <Webhook name={item} /> : <Webhooks />;
    case 'sync':
      return item ? <SyncRule name={item} /> : <SyncRules />;
    case 'imports':
      return <Imports />;
    case 'audit':
      return <AuditLog />;
    case 'settings':
      return <Settings />;
    default:
      return <p class="error">There is no such administration page. Choose one above.</p>;
  }
}
