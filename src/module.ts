import { DataSourcePlugin } from '@grafana/data';

import { ConfigEditor } from './components/ConfigEditor';
import { QueryEditor } from './components/QueryEditor';
import { LogsiftDatasource } from './datasource';
import { LogsiftOptions, LogsiftQuery, LogsiftSecureJsonData } from './types';

export const plugin = new DataSourcePlugin<LogsiftDatasource, LogsiftQuery, LogsiftOptions, LogsiftSecureJsonData>(
  LogsiftDatasource
)
  .setConfigEditor(ConfigEditor)
  .setQueryEditor(QueryEditor);
