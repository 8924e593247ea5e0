/** Connects the pure completion logic to Monaco's completion provider API. */
import type { Monaco, monacoTypes } from '@grafana/ui';

import {
  CompletionDataProvider,
  CompletionItem,
  CompletionKind,
  getCompletionContext,
  getCompletionItems,
} from '../../logql/completion';
import { LOGQL_LANGUAGE_ID } from './logqlLanguage';

export const TRIGGER_CHARACTERS = ['{', ',', '=', '~', '"', '|', ' ', '(', '['];

function monacoKind(monaco: Monaco, kind: CompletionKind): monacoTypes.languages.CompletionItemKind {
  const K = monaco.languages.CompletionItemKind;
  switch (kind) {
    case 'label':
      return K.Enum;
    case 'value':
      return K.EnumMember;
    case 'function':
      return K.Function;
    case 'parser':
      return K.Class;
    case 'operator':
      return K.Operator;
    case 'duration':
      return K.Unit;
    case 'variable':
      return K.Variable;
    case 'keyword':
      return K.Keyword;
    default:
      return K.Snippet;
  }
}

export function toMonacoSuggestion(
  monaco: Monaco,
  item: CompletionItem,
  range: monacoTypes.IRange
): monacoTypes.languages.CompletionItem {
  return {
    label: item.label,
    kind: monacoKind(monaco, item.kind),
    insertText: item.insertText,
    insertTextRules: item.isSnippet ? monaco.languages.CompletionItemInsertTextRule.InsertAsSnippet : undefined,
    detail: item.detail,
    documentation: item.documentation,
    sortText: item.sortText,
    range,
    command: item.retrigger ? { id: 'editor.action.triggerSuggest', title: '' } : undefined,
  };
}

/**
 * Registers a completion provider that answers only for the given editor's model (providers
 * are global per language, and several query rows each have an editor).
 */
export function registerCompletion(
  monaco: Monaco,
  editor: monacoTypes.editor.IStandaloneCodeEditor,
  data: () => CompletionDataProvider
): monacoTypes.IDisposable {
  return monaco.languages.registerCompletionItemProvider(LOGQL_LANGUAGE_ID, {
    triggerCharacters: TRIGGER_CHARACTERS,
    provideCompletionItems: async (model, position) => {
      if (model.id !== editor.getModel()?.id) {
        return { suggestions: [] };
      }
      const text = model.getValue();
      const ctx = getCompletionContext(text, model.getOffsetAt(position));
      let items: CompletionItem[] = [];
      try {
        items = await getCompletionItems(ctx.situation, data());
      } catch {
        // Label data could not be loaded; offering nothing beats an error popup while typing.
        items = [];
      }
      const start = model.getPositionAt(ctx.wordStart);
      const range = new monaco.Range(start.lineNumber, start.column, position.lineNumber, position.column);
      return { suggestions: items.map((i) => toMonacoSuggestion(monaco, i, range)) };
    },
  });
}
