package configdoc

import (
	"encoding"
	"fmt"
	"go/doc/comment"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// Doc is one configuration reference: a root struct and its defaults.
type Doc struct {
	Title string
	// Intro is Markdown, written under the title.
	Intro string
	// Default is a value of the root struct type holding the defaults that
	// an empty file gives; its type is what gets walked.
	Default any
	// Undocumented is the description of a key whose field has no comment
	// in the source.
	Undocumented string
}

// section is the table of one struct: the root, a nested block, the items
// of a list or the values of a map.
type section struct {
	path  string // "store", "overload.breaker", "files[]"; "" for the root
	intro string // Markdown
	rows  []row
}

type row struct {
	key, typ, def, desc string
}

type walker struct {
	src      *Source
	doc      Doc
	sections []*section
	seen     map[reflect.Type]string // struct type -> path of its section
	formats  map[reflect.Type]bool   // named scalar types met (sizes)
}

var (
	durationType      = reflect.TypeFor[time.Duration]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshalType = reflect.TypeFor[encoding.TextUnmarshaler]()
	stringerType      = reflect.TypeFor[fmt.Stringer]()
)

// Write renders d as Markdown: the title, the intro, the defaults as one
// YAML file, then one table per block.
func Write(w io.Writer, d Doc, src *Source) error {
	v := reflect.ValueOf(d.Default)
	if v.Kind() != reflect.Struct {
		return fmt.Errorf("configdoc: the default value is a %s, not a struct", v.Kind())
	}
	wk := &walker{src: src, doc: d, seen: map[reflect.Type]string{}, formats: map[reflect.Type]bool{}}
	td, err := src.lookup(v.Type())
	if err != nil {
		return err
	}
	intro := ""
	if td != nil {
		intro = markdown(td.doc, wk.renamer(v.Type(), ""))
	}
	if err := wk.walk("", v.Type(), v, intro); err != nil {
		return err
	}
	var yb strings.Builder
	if err := writeYAML(&yb, v, 0); err != nil {
		return err
	}

	var b strings.Builder
	fmt.Fprintf(&b, "<!-- Generated from the Go source by `%s`. Do not edit. -->\n\n", Command)
	fmt.Fprintf(&b, "# %s\n\n%s\n\n", d.Title, strings.TrimSpace(d.Intro))
	b.WriteString("## Contents\n\n")
	for _, s := range wk.sections {
		fmt.Fprintf(&b, "- [%s](#%s)\n", headingText(s.path), anchor(headingText(s.path)))
	}
	b.WriteString("- [Defaults as one file](#defaults-as-one-file)\n- [Value formats](#value-formats)\n\n")
	for _, s := range wk.sections {
		fmt.Fprintf(&b, "## %s\n\n", headingText(s.path))
		if s.intro != "" {
			b.WriteString(strings.TrimSpace(s.intro))
			b.WriteString("\n\n")
		}
		if len(s.rows) == 0 {
			continue
		}
		b.WriteString("| key | type | default | description |\n|---|---|---|---|\n")
		for _, r := range s.rows {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.key, r.typ, r.def, r.desc)
		}
		b.WriteString("\n")
	}
	b.WriteString("## Defaults as one file\n\n")
	b.WriteString("What an empty file means, spelled out. Lists and maps that are empty by default, and keys " +
		"that are unset, are shown as comments.\n\n```yaml\n")
	b.WriteString(yb.String())
	b.WriteString("```\n\n")
	b.WriteString("## Value formats\n\n")
	b.WriteString("- **duration**: Go's syntax, a number with a unit: `300ms`, `5s`, `1m30s`, `721h` " +
		"(units `ns`, `us`, `ms`, `s`, `m`, `h`; no days).\n")
	var sizes []reflect.Type
	for t := range wk.formats {
		sizes = append(sizes, t)
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i].String() < sizes[j].String() })
	for _, t := range sizes {
		td, err := src.lookup(t)
		if err != nil {
			return err
		}
		desc := "a number of bytes"
		if td != nil && td.doc != "" {
			desc = oneLine(td.doc)
		}
		fmt.Fprintf(&b, "- **size** (`%s`): %s\n", t.String(), desc)
	}
	b.WriteString("- **list**: a YAML list, `[a, b]` or one `- item` per line; **map**: a YAML mapping.\n")
	_, err = io.WriteString(w, b.String())
	return err
}

// walk adds the section of struct type t at path, then the sections of
// the blocks below it, depth first in declaration order.
func (wk *walker) walk(path string, t reflect.Type, v reflect.Value, intro string) error {
	sec := &section{path: path, intro: intro}
	wk.sections = append(wk.sections, sec)
	wk.seen[t] = path
	type child struct {
		path  string
		t     reflect.Type
		v     reflect.Value
		intro string
	}
	var children []child
	fields, err := wk.fields(t, v)
	if err != nil {
		return err
	}
	for _, f := range fields {
		key := "`" + f.key + "`"
		ft, fv := f.t, f.v
		if ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct && !isScalarStruct(ft.Elem()) {
			ft = ft.Elem()
			if fv.IsNil() {
				fv = reflect.Zero(ft)
			} else {
				fv = fv.Elem()
			}
		}
		sub := joinPath(path, f.key)
		switch {
		case ft.Kind() == reflect.Struct && !isScalarStruct(ft):
			if prev, ok := wk.seen[ft]; ok {
				sec.rows = append(sec.rows, row{key, "block", "", f.desc + " Same keys as " + link(prev) + "."})
				continue
			}
			sec.rows = append(sec.rows, row{key, "block", "", "See " + link(sub) + "."})
			wk.seen[ft] = sub
			children = append(children, child{sub, ft, fv, f.blockIntro(wk)})
		case ft.Kind() == reflect.Slice && isBlock(ft.Elem()):
			et := deref(ft.Elem())
			item := sub + "[]"
			if prev, ok := wk.seen[et]; ok {
				sec.rows = append(sec.rows, row{key, "list of blocks", "`[]`", f.desc + " Items have the keys of " + link(prev) + "."})
				continue
			}
			sec.rows = append(sec.rows, row{key, "list of blocks", renderDefault(fv), f.desc + " Items: see " + link(item) + "."})
			iv, err := itemDefault(et)
			if err != nil {
				return err
			}
			wk.seen[et] = item
			children = append(children, child{item, et, iv, f.blockIntro(wk)})
		case ft.Kind() == reflect.Map && isBlock(ft.Elem()):
			et := deref(ft.Elem())
			item := sub + ".<name>"
			if prev, ok := wk.seen[et]; ok {
				sec.rows = append(sec.rows, row{key, "map of blocks", renderDefault(fv), f.desc + " Each value has the keys of " + link(prev) + "."})
				continue
			}
			sec.rows = append(sec.rows, row{key, "map of blocks", renderDefault(fv), f.desc + " Values: see " + link(item) + "."})
			iv, err := itemDefault(et)
			if err != nil {
				return err
			}
			wk.seen[et] = item
			children = append(children, child{item, et, iv, f.blockIntro(wk)})
		default:
			wk.noteFormats(ft)
			sec.rows = append(sec.rows, row{key, typeName(ft), renderDefault(fv), f.desc})
		}
	}
	for _, c := range children {
		if err := wk.walk(c.path, c.t, c.v, c.intro); err != nil {
			return err
		}
	}
	return nil
}

// itemDefault is what the YAML decoder makes of a list item or map value
// that names no key: the zero value, unless the type fills in defaults
// itself (ingest.Limits starts from DefaultLimits).
func itemDefault(t reflect.Type) (reflect.Value, error) {
	p := reflect.New(t)
	if err := yaml.Unmarshal([]byte("{}"), p.Interface()); err != nil {
		return reflect.Value{}, fmt.Errorf("configdoc: decode an empty %s: %w", t, err)
	}
	return p.Elem(), nil
}

// field is one YAML key of a struct, with its description ready for a
// table cell.
type field struct {
	key     string
	goName  string
	t       reflect.Type
	v       reflect.Value
	desc    string
	rawDoc  string       // the field's own comment, for a block's intro
	parent  reflect.Type // the struct holding the field
	typeDoc string       // the doc of the field's own type, for a block's intro
}

// blockIntro is the intro of the section a field opens: its comment in the
// parent, then the doc of its type.
func (f field) blockIntro(wk *walker) string {
	var parts []string
	if f.rawDoc != "" {
		parts = append(parts, markdown(f.rawDoc, wk.renamer(f.parent, f.goName)))
	}
	if f.typeDoc != "" {
		parts = append(parts, markdown(f.typeDoc, wk.renamer(deref(elemOf(f.t)), "")))
	}
	return strings.Join(parts, "\n\n")
}

func elemOf(t reflect.Type) reflect.Type {
	switch t.Kind() {
	case reflect.Slice, reflect.Map, reflect.Pointer:
		return t.Elem()
	}
	return t
}

// fields lists the YAML keys of struct type t as go.yaml.in/yaml/v3 sees
// them: the tag's name, or the lower-cased field name; "-" skipped;
// ",inline" flattened.
func (wk *walker) fields(t reflect.Type, v reflect.Value) ([]field, error) {
	td, err := wk.src.lookup(t)
	if err != nil {
		return nil, err
	}
	var out []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		fv := v.Field(i)
		if strings.Contains(","+opts+",", ",inline,") {
			inner, err := wk.fields(deref(sf.Type), reflect.Indirect(fv))
			if err != nil {
				return nil, err
			}
			out = append(out, inner...)
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		f := field{key: name, goName: sf.Name, t: sf.Type, v: fv, parent: t}
		if td != nil {
			fd := td.fields[sf.Name]
			f.rawDoc = fd.doc
			if f.rawDoc == "" {
				f.rawDoc = fd.comment
			}
		}
		if et := deref(elemOf(sf.Type)); et.Kind() == reflect.Struct || sf.Type.Kind() == reflect.Map {
			// The type's own doc says what the block (or named map) is.
			docType := deref(sf.Type)
			if docType.Name() == "" {
				docType = et
			}
			if ttd, err := wk.src.lookup(docType); err != nil {
				return nil, err
			} else if ttd != nil {
				f.typeDoc = ttd.doc
			}
		}
		out = append(out, f)
	}
	for i := range out {
		out[i].desc = wk.describe(out, i, td)
	}
	return out, nil
}

// describe is the table text of fields[i]: its comment, or a pointer to
// the sibling whose comment covers it ("MinBackoff and MaxBackoff pace
// retries"), or the document's fallback.
func (wk *walker) describe(fields []field, i int, td *typeDoc) string {
	f := fields[i]
	if f.rawDoc != "" {
		return cell(wk.rename(f.rawDoc, f.parent, f.goName))
	}
	for j, g := range fields {
		if j != i && g.rawDoc != "" && containsWord(g.rawDoc, f.goName) {
			return "See `" + g.key + "`."
		}
	}
	if f.typeDoc != "" && (f.t.Kind() == reflect.Struct || f.t.Kind() == reflect.Map || f.t.Kind() == reflect.Slice) {
		return cell(wk.rename(f.typeDoc, deref(elemOf(f.t)), ""))
	}
	if td != nil && containsWord(td.doc, f.goName) {
		return "See the description of the block above."
	}
	return wk.doc.Undocumented
}

// renamer is rename bound to a struct, for markdown.
func (wk *walker) renamer(t reflect.Type, self string) func(string) string {
	return func(s string) string { return wk.rename(s, t, self) }
}

// rename replaces Go field names of struct t in text by their YAML keys,
// where they are surely identifiers: self at the very start (Go's "Name
// does ..." convention), CamelCase names of more than one word anywhere,
// and one-word names in the middle of a sentence whose key is not simply
// their lower case (not all-caps ones such as URL either, which are
// ordinary words there too).
func (wk *walker) rename(text string, t reflect.Type, self string) string {
	t = deref(t)
	if t.Kind() != reflect.Struct || text == "" {
		return text
	}
	keys := map[string]string{}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !sf.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		keys[sf.Name] = name
	}
	if self != "" {
		if k, ok := keys[self]; ok && strings.HasPrefix(text, self) && !isIdentByte(text, len(self)) {
			text = "`" + k + "`" + text[len(self):]
		}
	}
	var out strings.Builder
	last := 0
	for _, loc := range identRE.FindAllStringIndex(text, -1) {
		m := text[loc[0]:loc[1]]
		k, ok := keys[m]
		if !ok || strings.Count(text[:loc[0]], "`")%2 == 1 {
			continue
		}
		// Qualified (Config.Limits) or called (Enabled()): Go, not a key.
		if loc[0] > 0 && text[loc[0]-1] == '.' || loc[1] < len(text) && text[loc[1]] == '(' {
			continue
		}
		// A one-word name whose key is just its lower case (Redis,
		// Window) is as often the ordinary word; only one whose key
		// differs (Addr: address) is surely the field.
		if !multiWord(m) && (allCaps(m) || k == strings.ToLower(m) || !midSentence(text, loc[0])) {
			continue
		}
		out.WriteString(text[last:loc[0]])
		out.WriteString("`" + k + "`")
		last = loc[1]
	}
	out.WriteString(text[last:])
	return out.String()
}

// multiWord reports CamelCase names of several words: TokenFile,
// ClientCAFile, MaxLineSize.
func multiWord(s string) bool {
	for i := 1; i < len(s); i++ {
		if unicode.IsLower(rune(s[i-1])) && unicode.IsUpper(rune(s[i])) {
			return true
		}
	}
	return false
}

func allCaps(s string) bool {
	return strings.ToUpper(s) == s
}

// midSentence reports whether the word at i follows other words of its
// sentence.
func midSentence(text string, i int) bool {
	prev := strings.TrimRightFunc(text[:i], unicode.IsSpace)
	if prev == "" {
		return false
	}
	switch prev[len(prev)-1] {
	case '.', '!', '?':
		return false
	}
	return true
}

var identRE = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)

func isIdentByte(s string, i int) bool {
	if i >= len(s) {
		return false
	}
	c := s[i]
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func containsWord(text, word string) bool {
	for _, m := range identRE.FindAllString(text, -1) {
		if m == word {
			return true
		}
	}
	return false
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// isScalarStruct reports structs written as one scalar (time.Time).
func isScalarStruct(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(textUnmarshalType)
}

// isBlock reports whether values of t are YAML mappings with keys of
// their own.
func isBlock(t reflect.Type) bool {
	t = deref(t)
	return t.Kind() == reflect.Struct && !isScalarStruct(t)
}

func (wk *walker) noteFormats(t reflect.Type) {
	t = deref(t)
	switch t.Kind() {
	case reflect.Slice, reflect.Map:
		wk.noteFormats(t.Elem())
	case reflect.Int64:
		if isSize(t) {
			wk.formats[t] = true
		}
	}
}

func isSize(t reflect.Type) bool {
	return t.Kind() == reflect.Int64 && t != durationType && t.PkgPath() != "" && strings.Contains(t.Name(), "Byte")
}

// typeName is the type as a reader of the YAML file sees it.
func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case isSize(t):
		return "size"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.Bool:
		return "bool"
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "int"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice:
		return "list of " + typeName(t.Elem())
	case reflect.Map:
		return "map of " + typeName(t.Key()) + " to " + typeName(t.Elem())
	}
	return t.String()
}

// renderDefault is the default for a table cell.
func renderDefault(v reflect.Value) string {
	if v.Kind() == reflect.Pointer && v.IsNil() {
		return "unset"
	}
	s, err := scalar(v)
	if err != nil {
		return "`" + fmt.Sprint(v.Interface()) + "`"
	}
	return "`" + strings.ReplaceAll(s, "|", `\|`) + "`"
}

// scalar writes v as a YAML flow value that decodes back to v.
func scalar(v reflect.Value) (string, error) {
	t := v.Type()
	if t.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "null", nil
		}
		return scalar(v.Elem())
	}
	if t == durationType {
		return formatDuration(time.Duration(v.Int())), nil
	}
	if t.PkgPath() != "" && t.Kind() != reflect.Struct {
		if t.Implements(textMarshalerType) {
			b, err := v.Interface().(encoding.TextMarshaler).MarshalText()
			if err != nil {
				return "", err
			}
			return quoteIfNeeded(string(b)), nil
		}
		if t.Implements(stringerType) && t.Kind() != reflect.String {
			return quoteIfNeeded(v.Interface().(fmt.Stringer).String()), nil
		}
	}
	switch t.Kind() {
	case reflect.Bool:
		return strconv.FormatBool(v.Bool()), nil
	case reflect.String:
		return strconv.Quote(v.String()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10), nil
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64), nil
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			s, err := scalar(v.Index(i))
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		parts := make([]string, len(keys))
		for i, k := range keys {
			ks, err := scalar(k)
			if err != nil {
				return "", err
			}
			vs, err := scalar(v.MapIndex(k))
			if err != nil {
				return "", err
			}
			parts[i] = ks + ": " + vs
		}
		return "{" + strings.Join(parts, ", ") + "}", nil
	}
	return "", fmt.Errorf("configdoc: cannot write a %s as a YAML scalar", t)
}

// quoteIfNeeded leaves simple words (32MiB, 0B) bare.
func quoteIfNeeded(s string) string {
	for _, r := range s {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '_' || r == '-') {
			return strconv.Quote(s)
		}
	}
	if s == "" {
		return `""`
	}
	return s
}

// formatDuration drops the zero parts Go's String keeps: 1m, 721h, 0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// writeYAML writes struct v as a block of YAML keys at indent.
func writeYAML(b *strings.Builder, v reflect.Value, indent int) error {
	t := v.Type()
	pad := strings.Repeat(" ", indent)
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		fv := v.Field(i)
		if strings.Contains(","+opts+",", ",inline,") {
			if err := writeYAML(b, reflect.Indirect(fv), indent); err != nil {
				return err
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		ft := sf.Type
		switch {
		case ft.Kind() == reflect.Pointer && fv.IsNil():
			fmt.Fprintf(b, "%s# %s: unset\n", pad, name)
		case isBlock(ft) && ft.Kind() != reflect.Pointer:
			fmt.Fprintf(b, "%s%s:\n", pad, name)
			if err := writeYAML(b, fv, indent+2); err != nil {
				return err
			}
		case isBlock(ft):
			fmt.Fprintf(b, "%s%s:\n", pad, name)
			if err := writeYAML(b, fv.Elem(), indent+2); err != nil {
				return err
			}
		case (ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map) && fv.Len() == 0:
			empty := "[]"
			if ft.Kind() == reflect.Map {
				empty = "{}"
			}
			if fv.IsNil() {
				fmt.Fprintf(b, "%s# %s: %s\n", pad, name, empty)
			} else {
				fmt.Fprintf(b, "%s%s: %s\n", pad, name, empty)
			}
		case (ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map) && isBlock(ft.Elem()):
			return fmt.Errorf("configdoc: %s: a non-empty default list or map of blocks is not supported", name)
		default:
			s, err := scalar(fv)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			fmt.Fprintf(b, "%s%s: %s\n", pad, name, s)
		}
	}
	return nil
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func headingText(path string) string {
	if path == "" {
		return "Top level"
	}
	return "`" + path + "`"
}

func link(path string) string {
	h := headingText(path)
	return "[" + h + "](#" + anchor(h) + ")"
}

// anchor is GitHub's id for a heading: lower case, punctuation other than
// '-' and '_' dropped, spaces to '-'.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// cell makes a comment one line of a table cell.
func cell(s string) string {
	return strings.ReplaceAll(escapeText(oneLine(s)), "|", `\|`)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// markdown renders a doc comment as Markdown: paragraphs, lists and
// headings as text, code blocks fenced. Go's own Markdown printer escapes
// backquotes, which logsift's comments use for YAML keys and code. fix
// rewrites the prose (not the code blocks).
func markdown(text string, fix func(string) string) string {
	if strings.TrimSpace(text) == "" {
		return ""
	}
	var p comment.Parser
	var parts []string
	for _, blk := range p.Parse(text).Content {
		switch b := blk.(type) {
		case *comment.Paragraph:
			parts = append(parts, escapeText(fix(inline(b.Text))))
		case *comment.Heading:
			parts = append(parts, "**"+escapeText(fix(inline(b.Text)))+"**")
		case *comment.Code:
			parts = append(parts, "```\n"+strings.TrimRight(b.Text, "\n")+"\n```")
		case *comment.List:
			var items []string
			for i, it := range b.Items {
				var texts []string
				for _, c := range it.Content {
					if para, ok := c.(*comment.Paragraph); ok {
						texts = append(texts, escapeText(fix(inline(para.Text))))
					}
				}
				marker := "-"
				if it.Number != "" {
					marker = strconv.Itoa(i+1) + "."
				}
				items = append(items, marker+" "+strings.Join(texts, " "))
			}
			parts = append(parts, strings.Join(items, "\n"))
		}
	}
	return strings.Join(parts, "\n\n")
}

// inline is the plain text of a paragraph, on one line.
func inline(texts []comment.Text) string {
	var b strings.Builder
	for _, t := range texts {
		switch x := t.(type) {
		case comment.Plain:
			b.WriteString(string(x))
		case comment.Italic:
			b.WriteString(string(x))
		case *comment.Link:
			b.WriteString(inline(x.Text))
		case *comment.DocLink:
			b.WriteString(inline(x.Text))
		}
	}
	return oneLine(b.String())
}

// escapeText keeps Markdown from reading <data_dir> as an HTML tag; code
// spans are left alone.
func escapeText(s string) string {
	var b strings.Builder
	inCode := false
	for _, r := range s {
		switch {
		case r == '`':
			inCode = !inCode
			b.WriteRune(r)
		case !inCode && r == '<':
			b.WriteString("&lt;")
		case !inCode && r == '>':
			b.WriteString("&gt;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
