import { css } from '@emotion/css';
import { GrafanaTheme2, TimeRange } from '@grafana/data';
import { CodeEditor, Monaco, monacoTypes, Text, useStyles2 } from '@grafana/ui';
import React, { useCallback, useEffect, useRef, useState } from 'react';

import { LogsiftDatasource } from '../datasource';
import { errorMarker } from '../logql/errors';
import { registerCompletion } from './monaco/completionAdapter';
import { LOGQL_LANGUAGE_ID, registerLogQL } from './monaco/logqlLanguage';

export const VALIDATION_DELAY_MS = 400;
const MARKER_OWNER = 'logsift-logql';
const LINE_HEIGHT = 19;

interface Props {
  datasource: LogsiftDatasource;
  value: string;
  range?: TimeRange;
  /** Scopes label completion to one workspace. */
  workspace?: string;
  /** Called with the text when the editor loses focus and before a run. */
  onChange: (value: string) => void;
  onRunQuery: () => void;
}

/** The code mode: Monaco with LogQL highlighting, completion from the server's labels, and server-side validation. */
export function LogQLCodeEditor({ datasource, value, range, workspace, onChange, onRunQuery }: Props) {
  const styles = useStyles2(getStyles);
  const disposables = useRef<monacoTypes.IDisposable[]>([]);
  const latest = useRef({ datasource, range, workspace, onChange, onRunQuery });
  useEffect(() => {
    latest.current = { datasource, range, workspace, onChange, onRunQuery };
  });
  const containerRef = useRef<HTMLDivElement>(null);
  // Also shown under the editor: a marker alone needs a hover to be read.
  const [error, setError] = useState<string | undefined>();

  useEffect(
    () => () => {
      disposables.current.forEach((d) => d.dispose());
      disposables.current = [];
    },
    []
  );

  const onBeforeEditorMount = useCallback((monaco: Monaco) => registerLogQL(monaco), []);

  const onEditorDidMount = useCallback((editor: monacoTypes.editor.IStandaloneCodeEditor, monaco: Monaco) => {
    disposables.current.push(
      registerCompletion(monaco, editor, () =>
        latest.current.datasource.completionProvider(latest.current.range, latest.current.workspace)
      )
    );

    // Grow with the query instead of scrolling inside a one-line box.
    const fit = () => {
      const height = Math.max(editor.getContentHeight(), LINE_HEIGHT + 8);
      if (containerRef.current) {
        containerRef.current.style.height = `${height}px`;
      }
      editor.layout();
    };
    disposables.current.push(editor.onDidContentSizeChange(fit));
    fit();

    editor.addCommand(monaco.KeyMod.Shift | monaco.KeyCode.Enter, () => {
      latest.current.onChange(editor.getValue());
      latest.current.onRunQuery();
    });

    let timer: ReturnType<typeof setTimeout> | undefined;
    let generation = 0;
    const validate = async () => {
      const model = editor.getModel();
      if (!model) {
        return;
      }
      const text = model.getValue();
      const mine = ++generation;
      if (text.trim() === '') {
        monaco.editor.setModelMarkers(model, MARKER_OWNER, []);
        setError(undefined);
        return;
      }
      const problem = await latest.current.datasource.validate(text);
      if (mine !== generation || model.isDisposed()) {
        return;
      }
      const markers = problem
        ? [
            {
              ...errorMarker(problem.message, problem.interpolated.text, text, problem.interpolated.mapOffset),
              severity: monaco.MarkerSeverity.Error,
            },
          ]
        : [];
      monaco.editor.setModelMarkers(model, MARKER_OWNER, markers);
      setError(
        markers[0]
          ? `Line ${markers[0].startLineNumber}, column ${markers[0].startColumn}: ${markers[0].message}`
          : undefined
      );
    };
    disposables.current.push(
      editor.onDidChangeModelContent(() => {
        clearTimeout(timer);
        timer = setTimeout(validate, VALIDATION_DELAY_MS);
      })
    );
    disposables.current.push({ dispose: () => clearTimeout(timer) });
    validate();
  }, []);

  return (
    <div>
      <div className={styles.wrapper} ref={containerRef} data-testid="logsift-code-editor">
        <CodeEditor
          value={value}
          language={LOGQL_LANGUAGE_ID}
          height="100%"
          showLineNumbers={false}
          showMiniMap={false}
          wordWrap={true}
          onBlur={(v) => latest.current.onChange(v)}
          onBeforeEditorMount={onBeforeEditorMount}
          onEditorDidMount={onEditorDidMount}
          containerStyles={styles.container}
          monacoOptions={{
            scrollBeyondLastLine: false,
            renderLineHighlight: 'none',
            overviewRulerLanes: 0,
            hideCursorInOverviewRuler: true,
            scrollbar: { vertical: 'hidden', horizontal: 'hidden', alwaysConsumeMouseWheel: false },
            suggest: { showWords: false },
            quickSuggestions: { other: true, strings: true, comments: false },
            fontSize: 14,
            lineHeight: LINE_HEIGHT,
          }}
        />
      </div>
      {error && (
        <div className={styles.error} data-testid="logql-error">
          <Text color="error" variant="bodySmall">
            {error}
          </Text>
        </div>
      )}
    </div>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  wrapper: css({
    width: '100%',
    minHeight: `${LINE_HEIGHT + 8}px`,
  }),
  error: css({
    marginTop: theme.spacing(0.5),
  }),
  container: css({
    height: '100%',
    borderRadius: theme.shape.radius.default,
  }),
});
