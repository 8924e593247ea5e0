import { render, screen, waitFor } from '@testing-library/react';
import React from 'react';

import { LogsiftDatasource } from '../../datasource';
import { interpolateWithMap } from '../../logql/interpolate';
import { LogQLCodeEditor } from '../LogQLCodeEditor';
import { LOGQL_LANGUAGE_ID } from '../monaco/logqlLanguage';

// Monaco does not run in jsdom; the browser check covers it for real. Here the editor is a
// stand-in that hands our mount callbacks a fake Monaco, to test the wiring.
type EditorProps = {
  value: string;
  language: string;
  onBlur?: (v: string) => void;
  onBeforeEditorMount?: (m: unknown) => void;
  onEditorDidMount?: (e: unknown, m: unknown) => void;
};
let editorProps: EditorProps | undefined;
jest.mock('@grafana/ui', () => ({
  ...jest.requireActual('@grafana/ui'),
  CodeEditor: (props: EditorProps) => {
    editorProps = props;
    return <div data-testid="fake-monaco">{props.value}</div>;
  },
}));

class FakeRange {
  constructor(
    public startLineNumber: number,
    public startColumn: number,
    public endLineNumber: number,
    public endColumn: number
  ) {}
}

function fakeMonaco() {
  const providers: Array<{ triggerCharacters: string[]; provideCompletionItems: Function }> = [];
  const monaco = {
    languages: {
      register: jest.fn(),
      setMonarchTokensProvider: jest.fn(),
      setLanguageConfiguration: jest.fn(),
      registerCompletionItemProvider: jest.fn((_id: string, p: (typeof providers)[number]) => {
        providers.push(p);
        return { dispose: jest.fn() };
      }),
      CompletionItemKind: {
        Enum: 15,
        EnumMember: 16,
        Function: 1,
        Class: 5,
        Operator: 11,
        Unit: 12,
        Variable: 4,
        Keyword: 17,
        Snippet: 27,
      },
      CompletionItemInsertTextRule: { InsertAsSnippet: 4 },
    },
    editor: { setModelMarkers: jest.fn() },
    MarkerSeverity: { Error: 8 },
    KeyMod: { Shift: 1024 },
    KeyCode: { Enter: 3 },
    Range: FakeRange,
  };
  return { monaco, providers };
}

function fakeEditor(text: string) {
  let value = text;
  const contentListeners: Array<() => void> = [];
  const commands: Record<number, () => void> = {};
  const model = {
    id: 'model-1',
    getValue: () => value,
    getOffsetAt: (p: { lineNumber: number; column: number }) => p.column - 1,
    getPositionAt: (o: number) => ({ lineNumber: 1, column: o + 1 }),
    isDisposed: () => false,
  };
  const editor = {
    getModel: () => model,
    getValue: () => value,
    getContentHeight: () => 27,
    layout: jest.fn(),
    onDidContentSizeChange: () => ({ dispose: jest.fn() }),
    onDidChangeModelContent: (cb: () => void) => {
      contentListeners.push(cb);
      return { dispose: jest.fn() };
    },
    addCommand: (key: number, cb: () => void) => {
      commands[key] = cb;
    },
  };
  return {
    editor,
    model,
    commands,
    type: (next: string) => {
      value = next;
      contentListeners.forEach((l) => l());
    },
  };
}

function fakeDatasource(validate: (expr: string) => Promise<unknown>) {
  return {
    validate: jest.fn(validate),
    completionProvider: () => ({
      labelNames: async () => ['job', 'env'],
      labelValues: async () => ['api'],
      variables: () => [],
    }),
  } as unknown as LogsiftDatasource;
}

describe('LogQLCodeEditor', () => {
  beforeEach(() => {
    editorProps = undefined;
  });

  it('registers the LogQL language and completion that answers from label data', async () => {
    const ds = fakeDatasource(async () => undefined);
    render(<LogQLCodeEditor datasource={ds} value='{job="api", ' onChange={jest.fn()} onRunQuery={jest.fn()} />);
    expect(screen.getByTestId('fake-monaco')).toHaveTextContent('{job="api",');
    expect(editorProps?.language).toBe(LOGQL_LANGUAGE_ID);

    const { monaco, providers } = fakeMonaco();
    const { editor, model } = fakeEditor('{job="api", ');
    editorProps!.onBeforeEditorMount!(monaco);
    editorProps!.onEditorDidMount!(editor, monaco);
    expect(monaco.languages.register).toHaveBeenCalledWith({ id: LOGQL_LANGUAGE_ID });
    expect(monaco.languages.setMonarchTokensProvider).toHaveBeenCalledWith(LOGQL_LANGUAGE_ID, expect.any(Object));

    const result = await providers[0].provideCompletionItems(model, { lineNumber: 1, column: 13 });
    // job is already used in the selector.
    expect(result.suggestions.map((s: { label: string }) => s.label)).toEqual(['env']);
    expect(result.suggestions[0]).toMatchObject({
      insertText: 'env=',
      kind: 15,
      range: new FakeRange(1, 13, 1, 13),
      command: { id: 'editor.action.triggerSuggest', title: '' },
    });
    // Other editors' models get nothing from this provider.
    expect(await providers[0].provideCompletionItems({ ...model, id: 'other' }, { lineNumber: 1, column: 1 })).toEqual({
      suggestions: [],
    });
  });

  it('marks the server’s parse error where it is, and clears it when fixed', async () => {
    const ds = fakeDatasource(async (expr) =>
      (expr as string).includes('jsn')
        ? {
            message: 'parse error at line 1, col 15: unknown stage "jsn"',
            interpolated: interpolateWithMap(expr as string, (r) => r),
          }
        : undefined
    );
    render(<LogQLCodeEditor datasource={ds} value='{job="api"} | jsn' onChange={jest.fn()} onRunQuery={jest.fn()} />);
    const { monaco } = fakeMonaco();
    const fake = fakeEditor('{job="api"} | jsn');
    editorProps!.onEditorDidMount!(fake.editor, monaco);

    await waitFor(() => expect(monaco.editor.setModelMarkers).toHaveBeenCalled());
    expect(monaco.editor.setModelMarkers).toHaveBeenLastCalledWith(fake.model, 'logsift-logql', [
      {
        startLineNumber: 1,
        startColumn: 15,
        endLineNumber: 1,
        endColumn: 18,
        message: 'unknown stage "jsn"',
        severity: 8,
      },
    ]);

    expect(await screen.findByTestId('logql-error')).toHaveTextContent('Line 1, column 15: unknown stage "jsn"');

    fake.type('{job="api"} | json');
    await waitFor(() =>
      expect(monaco.editor.setModelMarkers).toHaveBeenLastCalledWith(fake.model, 'logsift-logql', [])
    );
    expect(screen.queryByTestId('logql-error')).not.toBeInTheDocument();
  });

  it('runs the query on Shift+Enter and reports the text on blur', () => {
    const onChange = jest.fn();
    const onRunQuery = jest.fn();
    render(
      <LogQLCodeEditor
        datasource={fakeDatasource(async () => undefined)}
        value=""
        onChange={onChange}
        onRunQuery={onRunQuery}
      />
    );
    const { monaco } = fakeMonaco();
    const fake = fakeEditor('{a="b"}');
    editorProps!.onEditorDidMount!(fake.editor, monaco);
    fake.commands[1024 | 3]();
    expect(onChange).toHaveBeenCalledWith('{a="b"}');
    expect(onRunQuery).toHaveBeenCalled();
    editorProps!.onBlur!('{a="c"}');
    expect(onChange).toHaveBeenLastCalledWith('{a="c"}');
  });
});
