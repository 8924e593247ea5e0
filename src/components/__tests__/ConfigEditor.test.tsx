import { DataSourceSettings } from '@grafana/data';
import { fireEvent, render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';

const user = userEvent.setup({ delay: null });
import React, { useState } from 'react';

import { LogsiftOptions, LogsiftSecureJsonData } from '../../types';
import { ConfigEditor } from '../ConfigEditor';

type Settings = DataSourceSettings<LogsiftOptions, LogsiftSecureJsonData>;

function settings(patch: Partial<Settings> = {}): Settings {
  // Built without the deprecated fields Grafana still declares (database).
  return {
    id: 1,
    uid: 'ls',
    orgId: 1,
    name: 'logsift',
    type: 'logsift-datasource',
    typeName: 'logsift',
    typeLogoUrl: '',
    access: 'proxy',
    url: 'http://logsift:3100',
    user: '',
    basicAuth: false,
    basicAuthUser: '',
    isDefault: false,
    jsonData: { tenant: 'acme', timeoutSeconds: 30 },
    secureJsonFields: {},
    readOnly: false,
    withCredentials: false,
    ...patch,
  } as Settings;
}

/** Keeps the options like Grafana's settings page does and reports each change. */
function Harness({ initial, onChange }: { initial: Settings; onChange: (s: Settings) => void }) {
  const [options, setOptions] = useState(initial);
  return (
    <ConfigEditor
      options={options}
      onOptionsChange={(o) => {
        setOptions(o);
        onChange(o);
      }}
    />
  );
}

function setup(initial: Settings) {
  const changes: Settings[] = [];
  render(<Harness initial={initial} onChange={(s) => changes.push(s)} />);
  return { changes, last: () => changes[changes.length - 1] };
}

describe('ConfigEditor', () => {
  it('shows the saved settings', () => {
    setup(settings());
    expect(screen.getByPlaceholderText('http://localhost:3100')).toHaveValue('http://logsift:3100');
    expect(screen.getByPlaceholderText('single tenant')).toHaveValue('acme');
    expect(screen.getByPlaceholderText('60')).toHaveValue(30);
  });

  it('edits the URL, tenant, timeout and line limit', async () => {
    const { last } = setup(settings({ url: '' }));
    await user.type(screen.getByPlaceholderText('http://localhost:3100'), 'http://new:3100');
    expect(last().url).toBe('http://new:3100');
    await user.clear(screen.getByPlaceholderText('single tenant'));
    await user.type(screen.getByPlaceholderText('single tenant'), 't2');
    expect(last().jsonData.tenant).toBe('t2');
    await user.type(screen.getByPlaceholderText('1000'), '250');
    expect(last().jsonData.maxLines).toBe(250);
    await user.clear(screen.getByPlaceholderText('60'));
    expect(last().jsonData.timeoutSeconds).toBeUndefined();
  });

  it('flags limits the backend would refuse', () => {
    setup(settings({ jsonData: { timeoutSeconds: 3600, maxLines: 2_000_000 } }));
    expect(screen.getByText('At most 1800 seconds')).toBeInTheDocument();
    expect(screen.getByText('At most 1,000,000')).toBeInTheDocument();
  });

  it('flags a URL that is not http(s)', () => {
    setup(settings({ url: 'logsift:3100' }));
    expect(screen.getByText('An http:// or https:// URL')).toBeInTheDocument();
  });

  it('takes a new API token as a secret', async () => {
    const { last } = setup(settings());
    await user.type(screen.getByPlaceholderText('token'), 's3cret');
    expect(last().secureJsonData?.apiToken).toBe('s3cret');
    // A secret never lands in the plain settings.
    expect(JSON.stringify(last().jsonData)).not.toContain('s3cret');
  });

  it('shows a saved token as configured and resets it', async () => {
    const { last } = setup(settings({ secureJsonFields: { apiToken: true } }));
    const input = screen.getByPlaceholderText('token');
    expect(input).toBeDisabled();
    expect(input).toHaveValue('configured');
    await user.click(screen.getByRole('button', { name: 'Reset' }));
    expect(last().secureJsonFields.apiToken).toBe(false);
    expect(last().secureJsonData?.apiToken).toBe('');
  });

  it('asks for a CA certificate only when it is used', async () => {
    const { last } = setup(settings());
    expect(screen.queryByPlaceholderText('-----BEGIN CERTIFICATE-----')).not.toBeInTheDocument();
    fireEvent.click(screen.getByLabelText(/^With CA certificate/));
    expect(last().jsonData.tlsAuthWithCACert).toBe(true);
    expect(screen.getByText(/Needed to verify the server/)).toBeInTheDocument();
    await user.type(screen.getByPlaceholderText('-----BEGIN CERTIFICATE-----'), 'PEM');
    expect(last().secureJsonData?.tlsCACert).toBe('PEM');
    fireEvent.click(screen.getByLabelText(/^Skip TLS certificate verification/));
    expect(last().jsonData.tlsSkipVerify).toBe(true);
  });

  it('adds, edits, tries and removes a derived field', async () => {
    const { last } = setup(settings());
    await user.click(screen.getByRole('button', { name: /Add derived field/ }));
    await user.type(screen.getByLabelText('Derived field name'), 'TraceID');
    // userEvent treats brackets and braces as key descriptors: paste the regex instead.
    await user.click(screen.getByLabelText('Derived field matcher'));
    await user.paste('traceID=(\\w+)');
    await user.click(screen.getByLabelText('Derived field URL'));
    await user.paste('https://t/${__value.raw}');
    expect(last().jsonData.derivedFields).toEqual([
      { name: 'TraceID', matcherType: 'regex', matcherRegex: 'traceID=(\\w+)', url: 'https://t/${__value.raw}' },
    ]);

    await user.click(screen.getByLabelText('Example log line'));
    await user.paste('GET / traceID=abc42 200');
    expect(screen.getByTestId('derived-field-result-0')).toHaveTextContent('TraceID: abc42');

    await user.click(screen.getByRole('button', { name: 'Remove derived field' }));
    expect(last().jsonData.derivedFields).toEqual([]);
  });

  it('marks an invalid regex', async () => {
    setup(settings({ jsonData: { derivedFields: [{ name: 'x', matcherRegex: '(', url: '' }] } }));
    expect(screen.getByText('Not a valid regular expression')).toBeInTheDocument();
  });
});
