// Package api holds logsift's protobuf service definitions and the Go code
// generated from them. The generated files are checked in; regenerate them
// with `go generate ./pkg/api` after editing a .proto file (it needs protoc
// and the protoc-gen-go and protoc-gen-go-grpc plugins on PATH, see
// docs/agent.md).
package api

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative chunks.proto
//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative workspace.proto
//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative query.proto
