package plugin

import (
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/logsift/logsift/datasource/client"
	"github.com/logsift/logsift/datasource/frames"
)

func BenchmarkArrowOnly(b *testing.B) {
	res, _ := client.DecodeQueryResponse(cannedLogs(1000))
	fr := frames.Logs(res, frames.LogsOptions{})
	for b.Loop() {
		_, _ = data.Frames{fr}.MarshalArrow()
	}
}

func BenchmarkDecodeOnly(b *testing.B) {
	body := cannedLogs(1000)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = client.DecodeQueryResponse(body)
	}
}

func BenchmarkFrameOnly(b *testing.B) {
	res, _ := client.DecodeQueryResponse(cannedLogs(1000))
	b.ReportAllocs()
	for b.Loop() {
		_ = frames.Logs(res, frames.LogsOptions{})
	}
}
