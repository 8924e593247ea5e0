// Package configdoc writes the configuration references in docs/ from the
// code, so that they cannot drift from it: it walks a configuration's root
// type by reflection (YAML keys from the yaml tags, types, defaults from the
// default value) and takes every description from the doc comments in the
// Go source, read with go/parser. The server's file (server.Config) becomes
// docs/config-reference.md, the agent's (agent/config.Config)
// docs/agent-config-reference.md. A test regenerates both in memory and
// fails when the checked-in files differ.
//
// Regenerate after changing a configuration type or its comments:
//
//	go run ./pkg/server/configdoc/cmd
//
//go:generate go run ./cmd
package configdoc

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	agentconfig "github.com/logsift/logsift/agent/config"
	"github.com/logsift/logsift/pkg/server"
)

// Command regenerates every reference; the drift test prints it.
const Command = "go run ./pkg/server/configdoc/cmd"

// Target is one generated file.
type Target struct {
	// Path is relative to the module root.
	Path string
	Doc  func() Doc
}

// Targets are the files this package generates.
func Targets() []Target {
	return []Target{
		{Path: "docs/config-reference.md", Doc: ServerDoc},
		{Path: "docs/agent-config-reference.md", Doc: AgentDoc},
	}
}

// ServerDoc describes the server's configuration file.
func ServerDoc() Doc {
	return Doc{
		Title: "Server configuration reference",
		Intro: "Every key of the server's YAML file (`logsift serve -config.file logsift.yaml`), with its type, " +
			"its default and what it does. Every key has a default, so an empty file, or none, runs the " +
			"embedded default. Unknown keys are an error, so that a typo does not fall back to a default " +
			"silently. The command-line flags of `logsift serve` (`-data-dir`, `-http-listen-address`, " +
			"`-grpc-listen-address`, `-target`) override the keys of the same name; `logsift serve -h` " +
			"lists them.\n\n" +
			"Where a default is `0`, `\"\"` or unset, the component chooses its value when the server starts, " +
			"and the description names it (\"default 2 MiB\", \"0: 64 MiB\"). Example files: " +
			"[deploy/server/](../deploy/server/). How the settings fit together: [operations.md](operations.md).",
		Default:      server.DefaultConfig(),
		Undocumented: "(no description in the code yet)",
	}
}

// AgentDoc describes the agent's configuration file.
func AgentDoc() Doc {
	return Doc{
		Title: "Agent configuration reference",
		Intro: "Every key of `logsift-agent`'s YAML file (`logsift-agent run --config agent.yaml`), with its " +
			"type, its default and what it does. Every key has a default except `output.url` and `files`. " +
			"Unknown keys are an error; `logsift-agent validate --config agent.yaml` prints every problem " +
			"with its line. Relative paths are relative to the configuration file's directory. " +
			"[agent.md](agent.md) explains tailing, shipping and importing, with an annotated example " +
			"(\"Configuration reference\").",
		Default:      agentconfig.Default(),
		Undocumented: "See the annotated example in [agent.md](agent.md#configuration-reference).",
	}
}

// Generate writes the server's configuration reference.
func Generate(w io.Writer) error { return generate(w, ServerDoc()) }

// GenerateAgent writes the agent's configuration reference.
func GenerateAgent(w io.Writer) error { return generate(w, AgentDoc()) }

func generate(w io.Writer, d Doc) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	src, err := NewSource(root)
	if err != nil {
		return err
	}
	return Write(w, d, src)
}

// WriteAll regenerates every target under the module root and returns the
// paths written.
func WriteAll(root string) ([]string, error) {
	src, err := NewSource(root)
	if err != nil {
		return nil, err
	}
	var written []string
	for _, t := range Targets() {
		var buf bytes.Buffer
		if err := Write(&buf, t.Doc(), src); err != nil {
			return written, fmt.Errorf("%s: %w", t.Path, err)
		}
		p := filepath.Join(root, filepath.FromSlash(t.Path))
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			return written, fmt.Errorf("write %s: %w", t.Path, err)
		}
		written = append(written, t.Path)
	}
	return written, nil
}
