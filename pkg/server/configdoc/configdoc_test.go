package configdoc

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/logsift/logsift/pkg/server"
	"github.com/logsift/logsift/pkg/server/configdoc/internal/fixture"
)

func source(t *testing.T) (string, *Source) {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewSource(root)
	if err != nil {
		t.Fatal(err)
	}
	return root, src
}

// TestReferencesUpToDate fails when a configuration type or its comments
// changed and the references in docs/ were not regenerated.
func TestReferencesUpToDate(t *testing.T) {
	root, src := source(t)
	for _, tg := range Targets() {
		var want bytes.Buffer
		if err := Write(&want, tg.Doc(), src); err != nil {
			t.Fatalf("%s: %v", tg.Path, err)
		}
		got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(tg.Path)))
		if err != nil {
			t.Errorf("%s: %v; generate it with: %s", tg.Path, err, Command)
			continue
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s is out of date with the code (%s); regenerate it with: %s", tg.Path, firstDiff(got, want.Bytes()), Command)
		}
	}
}

func firstDiff(got, want []byte) string {
	g := strings.Split(string(got), "\n")
	w := strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ": the file has " + quote(gl) + ", the code gives " + quote(wl)
		}
	}
	return "no line differs"
}

func quote(s string) string {
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return "\"" + s + "\""
}

// yamlBlock is the "Defaults as one file" block of a generated reference.
func yamlBlock(t *testing.T, doc string) string {
	t.Helper()
	_, after, ok := strings.Cut(doc, "## Defaults as one file")
	if !ok {
		t.Fatal("no defaults section")
	}
	_, after, ok = strings.Cut(after, "```yaml\n")
	if !ok {
		t.Fatal("no yaml block in the defaults section")
	}
	block, _, ok := strings.Cut(after, "```")
	if !ok {
		t.Fatal("unterminated yaml block")
	}
	return block
}

// TestDefaultsFileMeansDefaults decodes the defaults file of each reference
// strictly into a zero configuration: it must give exactly the default
// value, so the file shows what an empty file means and every key in it
// exists.
func TestDefaultsFileMeansDefaults(t *testing.T) {
	_, src := source(t)
	for _, tg := range Targets() {
		d := tg.Doc()
		var buf bytes.Buffer
		if err := Write(&buf, d, src); err != nil {
			t.Fatal(err)
		}
		block := yamlBlock(t, buf.String())
		got := reflect.New(reflect.TypeOf(d.Default))
		dec := yaml.NewDecoder(strings.NewReader(block))
		dec.KnownFields(true)
		if err := dec.Decode(got.Interface()); err != nil {
			t.Fatalf("%s: the defaults file does not decode: %v\n%s", tg.Path, err, block)
		}
		if !reflect.DeepEqual(got.Elem().Interface(), d.Default) {
			t.Errorf("%s: the defaults file decodes to\n%+v\nwant\n%+v", tg.Path, got.Elem().Interface(), d.Default)
		}
	}

	// The server's own loader, which starts from DefaultConfig, reads it
	// back unchanged too.
	var buf bytes.Buffer
	if err := Write(&buf, ServerDoc(), src); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "logsift.yaml")
	if err := os.WriteFile(p, []byte(yamlBlock(t, buf.String())), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := server.LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, server.DefaultConfig()) {
		t.Errorf("LoadConfig of the defaults file gives %+v, want DefaultConfig()", cfg)
	}
}

// TestEveryKeyListed checks the reference against the configuration type
// by another route: every YAML key path that the default configuration
// marshals to is a row of the reference.
func TestEveryKeyListed(t *testing.T) {
	_, src := source(t)
	for _, tg := range Targets() {
		d := tg.Doc()
		var buf bytes.Buffer
		if err := Write(&buf, d, src); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		b, err := yaml.Marshal(d.Default)
		if err != nil {
			t.Fatal(err)
		}
		var tree map[string]any
		if err := yaml.Unmarshal(b, &tree); err != nil {
			t.Fatal(err)
		}
		n := 0
		var visit func(prefix string, m map[string]any)
		visit = func(prefix string, m map[string]any) {
			for k, v := range m {
				n++
				section := prefix
				if section == "" {
					section = "Top level"
				} else {
					section = "`" + section + "`"
				}
				_, body, ok := strings.Cut(out, "\n## "+section+"\n")
				if !ok {
					t.Errorf("%s: no section %s", tg.Path, section)
					continue
				}
				body, _, _ = strings.Cut(body, "\n## ")
				if !strings.Contains(body, "\n| `"+k+"` |") {
					t.Errorf("%s: section %s has no row for %s", tg.Path, section, k)
				}
				if sub, ok := v.(map[string]any); ok && isStructKey(d.Default, prefix, k) {
					visit(joinPath(prefix, k), sub)
				}
			}
		}
		visit("", tree)
		if n < 20 {
			t.Errorf("%s: only %d keys marshalled; the check did not run", tg.Path, n)
		}
	}
}

// isStructKey reports whether the key at prefix.k is a block (a struct),
// not a map value such as tracing.headers.
func isStructKey(root any, prefix, k string) bool {
	t := reflect.TypeOf(root)
	path := strings.Split(joinPath(prefix, k), ".")
	for _, p := range path {
		t = deref(t)
		if t.Kind() != reflect.Struct {
			return false
		}
		found := false
		for i := 0; i < t.NumField(); i++ {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			if name == p {
				t, found = t.Field(i).Type, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return deref(t).Kind() == reflect.Struct
}

// TestGeneratorCases runs the generator on a fixture type that has every
// case it handles, and checks the rendered rows.
func TestGeneratorCases(t *testing.T) {
	_, src := source(t)
	var buf bytes.Buffer
	err := Write(&buf, Doc{Title: "Fixture", Intro: "Intro.", Default: fixture.Default(), Undocumented: "UNDOCUMENTED"}, src)
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		// The root's doc: a CamelCase name and a one-word name whose key
		// differs are renamed, a one-word name whose key is its lower
		// case is left as a word, and code blocks are left alone.
		"Root is the fixture's file. Only `max_items` is required, and `address` when a Cache is shared. In code blocks nothing is renamed:",
		"```\nmax_items: 3   # MaxItems, Addr\n```",
		"| `address` | string | `\"\"` | `address` is where the Cache is. |",
		// Own name at the start and a CamelCase name later become keys;
		// "|" in a default is escaped for the table.
		"| `name` | string | `\"x\\|y\"` | `name` names the thing; see also `max_items`. |",
		// An all-caps name stays a word in a trailing comment.
		"| `url` | string | `\"\"` | the base URL of the server |",
		// A field covered by its sibling's comment points there.
		"| `max_wait` | duration | `1m30s` | See `min_wait`. |",
		// Inline fields join the parent's table.
		"| `depth` | int | `2` | `depth` is how deep. |",
		"| `opt` | bool | unset | `opt` is unset unless written. |",
		"| `items` | list of blocks | `[]` | `items` are weighed. Items: see [`items[]`](#items). |",
		"| `by_name` | map of blocks | `{}` | Item is one item; an item that names nothing weighs 7. Each value has the keys of [`items[]`](#items). |",
		"| `size` | size | `1024` |",
		"| `tags` | list of string | `[\"a\", \"b c\"]` |",
		"| `lonely` | int | `0` | UNDOCUMENTED |",
		// An item's default is what decoding {} gives (the unmarshaler's 7).
		"## `items[]`",
		"| `weight` | int | `7` | `weight` of the item. |",
		"- **size** (`fixture.Bytes`): Bytes is a size written as a number of bytes.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "hidden") {
		t.Error("a yaml:\"-\" field is documented")
	}
	// The fixture's defaults file decodes back to the defaults.
	var got fixture.Root
	dec := yaml.NewDecoder(strings.NewReader(yamlBlock(t, out)))
	dec.KnownFields(true)
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, fixture.Default()) {
		t.Errorf("defaults file decodes to %+v, want %+v", got, fixture.Default())
	}
}

// TestMetricsDocumented holds the metrics reference in docs/operations.md
// to the code both ways: every metric the code registers is listed, and
// every name listed is registered (histograms may be named with their
// _bucket, _sum or _count series).
func TestMetricsDocumented(t *testing.T) {
	root, _ := source(t)
	names, err := MetricNames(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 50 {
		t.Fatalf("found only %d metric names in the code: %v; the scan is broken", len(names), names)
	}
	b, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, ref, ok := strings.Cut(string(b), "\n## Metrics reference\n")
	if !ok {
		t.Fatal("docs/operations.md has no \"## Metrics reference\" section")
	}
	ref, _, _ = strings.Cut(ref, "\n## ")
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile("`(logsift_[a-z0-9_]*[a-z0-9])[`{]").FindAllStringSubmatch(ref, -1) {
		listed[m[1]] = true
	}
	inCode := map[string]bool{}
	for _, n := range names {
		inCode[n] = true
		if !listed[n] {
			t.Errorf("metric %s is registered in the code but missing from the metrics reference in docs/operations.md", n)
		}
	}
	for n := range listed {
		base := n
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(n, suf); ok && inCode[b] {
				base = b
			}
		}
		if !inCode[base] {
			t.Errorf("docs/operations.md lists %s, which no code registers", n)
		}
	}
}
