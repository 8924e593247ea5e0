/** Query variables through the datasource's own editor: label names, label values, workspaces. */
import { CustomVariableSupport, DataQueryRequest, DataQueryResponse } from '@grafana/data';
import { from, map, Observable } from 'rxjs';

import { VariableQueryEditor } from './components/VariableQueryEditor';
import type { LogsiftDatasource } from './datasource';
import { LogsiftVariableQuery } from './types';

export class LogsiftVariableSupport extends CustomVariableSupport<LogsiftDatasource, LogsiftVariableQuery> {
  editor = VariableQueryEditor;

  constructor(private readonly datasource: LogsiftDatasource) {
    super();
  }

  query(request: DataQueryRequest<LogsiftVariableQuery>): Observable<DataQueryResponse> {
    // Dashboards saved before this editor hold the query as text; metricFindQuery reads both.
    const [target] = request.targets;
    return from(this.datasource.metricFindQuery(target, { scopedVars: request.scopedVars, range: request.range })).pipe(
      map((data) => ({ data }))
    );
  }
}
