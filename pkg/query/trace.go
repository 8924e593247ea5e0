package query

import "go.opentelemetry.io/otel/attribute"

// statsAttributes put a query's scan statistics on its span, so that a
// trace shows how much was pruned, read and matched.
func statsAttributes(st *Stats) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.Int64("chunks.referenced", st.ChunksRef),
		attribute.Int64("chunks.pruned", st.ChunksPruned),
		attribute.Int64("chunks.decoded", st.ChunksDecoded),
		attribute.Int64("bytes.compressed", st.CompressedBytes),
		attribute.Int64("bytes.decompressed", st.DecompressedBytes+st.HeadChunkBytes),
		attribute.Int64("lines.scanned", st.DecompressedLines+st.HeadChunkLines),
		attribute.Int64("lines.matched", st.PostFilterLines),
		attribute.Int64("streams", st.Streams),
	}
}
