package logql

import "testing"

func BenchmarkParseExpr(b *testing.B) {
	for _, q := range []struct{ name, query string }{
		{"log", `{app="api", env=~"prod|staging"} |= "error" != "timeout" | json | status >= 500 | line_format "{{.msg}}"`},
		{"metric", `sum by (app) (rate({app="api"} |~ "(?i)fail(ed|ure)" [5m])) / sum by (app) (rate({app="api"}[5m])) > 0.05`},
	} {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseExpr(q.query); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRequiredNeedles(b *testing.B) {
	sel, err := ParseLogSelector(`{app="api"} |= "GET" |~ "Failed password for (invalid user )?\\S+ from" |> "<_> port <_>"`)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		RequiredNeedles(sel, 3)
	}
}
