package pipeline

import (
	"fmt"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
)

// maxTemplateOutput bounds what one template execution may produce, so
// that a query cannot make the server allocate without limit.
const maxTemplateOutput = 4 << 20

var errTemplateTooLarge = fmt.Errorf("template output exceeds %d bytes", maxTemplateOutput)

// limitedBuffer is the output of a template: it fails past the limit.
type limitedBuffer struct{ b []byte }

func (w *limitedBuffer) Write(p []byte) (int, error) {
	if len(w.b)+len(p) > maxTemplateOutput {
		return 0, errTemplateTooLarge
	}
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *limitedBuffer) WriteString(s string) (int, error) {
	if len(w.b)+len(s) > maxTemplateOutput {
		return 0, errTemplateTooLarge
	}
	w.b = append(w.b, s...)
	return len(s), nil
}

// tmplContext is what __line__ and __timestamp__ read: the entry being
// formatted. Each template instance owns one.
type tmplContext struct {
	line []byte
	ts   int64
}

// parseTemplate compiles a template with the LogQL functions. The parse
// tree is shared by all instances; each binds its own context.
func parseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Option("missingkey=zero").Funcs(templateFuncs(&tmplContext{})).Parse(text)
}

func bindTemplate(t *template.Template, ctx *tmplContext) *template.Template {
	c, err := t.Clone()
	if err != nil {
		// Clone fails only on a template already executed; ours never are.
		panic(err)
	}
	return c.Funcs(templateFuncs(ctx))
}

// simpleTemplate is a template made only of text and {{.label}} actions,
// the common case, which runs without text/template's reflection.
type simpleTemplate struct {
	parts []simplePart
}

type simplePart struct {
	text  string
	field string // "" for text
	h     uint64
}

// newSimpleTemplate returns nil when the template does more than print
// labels.
func newSimpleTemplate(t *template.Template) *simpleTemplate {
	st := &simpleTemplate{}
	for _, n := range t.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			st.parts = append(st.parts, simplePart{text: string(n.Text)})
		case *parse.ActionNode:
			p := n.Pipe
			if p == nil || p.IsAssign || len(p.Decl) > 0 || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
				return nil
			}
			f, ok := p.Cmds[0].Args[0].(*parse.FieldNode)
			if !ok || len(f.Ident) != 1 {
				return nil
			}
			st.parts = append(st.parts, simplePart{field: f.Ident[0], h: nameHash(f.Ident[0])})
		default:
			return nil
		}
	}
	return st
}

func (t *simpleTemplate) exec(st *entryState, dst []byte) ([]byte, error) {
	for _, p := range t.parts {
		if p.field == "" {
			dst = append(dst, p.text...)
			continue
		}
		v, _ := st.getSpecial(p.field, p.h)
		dst = append(dst, v...)
	}
	if len(dst) > maxTemplateOutput {
		return dst, errTemplateTooLarge
	}
	return dst, nil
}

// templateFields lists the labels a template reads and reports whether it
// may read any label (the whole map, variables, range over it).
func templateFields(t *template.Template) (names []string, all bool) {
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		if n == nil || all {
			return
		}
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			if n == nil {
				return
			}
			for _, c := range n.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			for _, a := range n.Args {
				walk(a)
			}
		case *parse.IfNode:
			walkBranch(&n.BranchNode, walk)
		case *parse.RangeNode:
			walkBranch(&n.BranchNode, walk)
		case *parse.WithNode:
			walkBranch(&n.BranchNode, walk)
		case *parse.FieldNode:
			if len(n.Ident) > 0 {
				names = append(names, n.Ident[0])
			}
		case *parse.ChainNode:
			walk(n.Node)
		case *parse.DotNode, *parse.VariableNode:
			all = true
		case *parse.TemplateNode:
			all = true
		}
	}
	walk(t.Root)
	return names, all
}

func walkBranch(b *parse.BranchNode, walk func(parse.Node)) {
	walk(b.Pipe)
	walk(b.List)
	if b.ElseList != nil {
		walk(b.ElseList)
	}
}

// templateData fills m with the labels of the entry, errors included, as
// the data of a template.
func templateData(st *entryState, m map[string]string) map[string]string {
	clear(m)
	st.each(func(l labels.Label, _ uint8) { m[l.Name] = l.Value })
	if st.err != "" {
		m[ErrorLabel] = st.err
	}
	if st.errDetails != "" {
		m[ErrorDetailsLabel] = st.errDetails
	}
	return m
}

// lineFormatStage is `| line_format "template"`: the output replaces the
// line. On a template error the line is kept and __error__ is
// TemplateFormatErr.
type lineFormatStage struct {
	t      *template.Template
	simple *simpleTemplate
}

func newLineFormatStage(s *logql.LineFormat) (stage, error) {
	t, err := parseTemplate("line", s.Template)
	if err != nil {
		return nil, fmt.Errorf("invalid line template: %w", err)
	}
	return &lineFormatStage{t: t, simple: newSimpleTemplate(t)}, nil
}

type lineFormatInst struct {
	simple *simpleTemplate
	t      *template.Template
	ctx    *tmplContext
	data   map[string]string
	out    limitedBuffer
}

func (s *lineFormatStage) instance() stageInstance {
	ctx := &tmplContext{}
	return &lineFormatInst{simple: s.simple, t: bindTemplate(s.t, ctx), ctx: ctx, data: map[string]string{}}
}

func (in *lineFormatInst) process(st *entryState, ts int64, line []byte) ([]byte, bool) {
	if in.simple != nil {
		var err error
		in.out.b, err = in.simple.exec(st, in.out.b[:0])
		if err != nil {
			st.setErr(ErrTemplateFormat, err.Error())
			return line, true
		}
		return in.out.b, true
	}
	in.ctx.line, in.ctx.ts = line, ts
	in.out.b = in.out.b[:0]
	if err := in.t.Execute(&in.out, templateData(st, in.data)); err != nil {
		st.setErr(ErrTemplateFormat, templateError(err))
		return line, true
	}
	// The buffer is reused by the next entry only: this entry's later
	// stages and labels may reference the line until then.
	return in.out.b, true
}

// templateError is the __error_details__ of a failed template: the full
// message, which names the template position, as Loki reports it.
func templateError(err error) string { return err.Error() }

// labelFormatStage is `| label_format dst=src, dst="template"`. A rename
// moves the value (keeping its category) and removes src when src exists;
// a template sets a parsed label. All templates of one stage see the labels
// as they were before its first template ran.
type labelFormatStage struct {
	ops []labelFormatOp
	// live: every template is simple and reads no label another operation
	// of the stage writes or removes, so reading the live labels gives the
	// same as the snapshot, without building it.
	live bool
}

type labelFormatOp struct {
	dst, src string
	t        *template.Template
	simple   *simpleTemplate
}

func newLabelFormatStage(s *logql.LabelFormat) (stage, error) {
	st := &labelFormatStage{}
	seen := map[string]bool{}
	for _, op := range s.Ops {
		if isReserved(op.Dst) {
			return nil, fmt.Errorf("%s cannot be formatted", op.Dst)
		}
		if seen[op.Dst] {
			return nil, fmt.Errorf("multiple label name '%s' not allowed in a single format operation", op.Dst)
		}
		seen[op.Dst] = true
		o := labelFormatOp{dst: op.Dst, src: op.Src}
		if op.Template {
			t, err := parseTemplate("label", op.Src)
			if err != nil {
				return nil, fmt.Errorf("invalid template for label '%s': %w", op.Dst, err)
			}
			o.t = t
			o.simple = newSimpleTemplate(t)
		}
		st.ops = append(st.ops, o)
	}
	st.live = true
	touched := map[string]bool{}
	for _, op := range st.ops {
		touched[op.dst] = true
		if op.t == nil {
			touched[op.src] = true
		}
	}
	for _, op := range st.ops {
		if op.t == nil {
			continue
		}
		if op.simple == nil {
			st.live = false
			break
		}
		for _, p := range op.simple.parts {
			if p.field != "" && touched[p.field] {
				st.live = false
			}
		}
	}
	return st, nil
}

type labelFormatInst struct {
	live bool
	ops  []labelFormatOpInst
	ctx  *tmplContext
	data map[string]string
	out  limitedBuffer
}

type labelFormatOpInst struct {
	dst    *labelName
	src    string
	srcH   uint64
	t      *template.Template
	simple *simpleTemplate
	rename bool
}

func (s *labelFormatStage) instance() stageInstance {
	ctx := &tmplContext{}
	in := &labelFormatInst{live: s.live, ctx: ctx, data: map[string]string{}}
	for _, op := range s.ops {
		o := labelFormatOpInst{dst: newLabelName(op.dst, nil), src: op.src, srcH: nameHash(op.src)}
		if op.t != nil {
			o.t = bindTemplate(op.t, ctx)
			o.simple = op.simple
		} else {
			o.rename = true
		}
		in.ops = append(in.ops, o)
	}
	return in
}

func (in *labelFormatInst) process(st *entryState, ts int64, line []byte) ([]byte, bool) {
	in.ctx.line, in.ctx.ts = line, ts
	haveData := false
	for _, op := range in.ops {
		if op.rename {
			v, cat, ok := st.getWithCat(op.src, op.srcH)
			if ok {
				st.set(cat, op.dst.name, op.dst.h, v)
				st.del(op.src, op.srcH)
			}
			continue
		}
		in.out.b = in.out.b[:0]
		if in.live {
			var err error
			if in.out.b, err = op.simple.exec(st, in.out.b); err != nil {
				st.setErr(ErrTemplateFormat, err.Error())
				continue
			}
			st.set(catParsed, op.dst.name, op.dst.h, st.appendValue(in.out.b))
			continue
		}
		if !haveData {
			templateData(st, in.data)
			haveData = true
		}
		if op.simple != nil {
			// Reads the map, not the live labels: templates of one stage
			// see the labels as they were before it.
			for _, p := range op.simple.parts {
				if p.field == "" {
					in.out.b = append(in.out.b, p.text...)
				} else {
					in.out.b = append(in.out.b, in.data[p.field]...)
				}
			}
		} else if err := op.t.Execute(&in.out, in.data); err != nil {
			st.setErr(ErrTemplateFormat, templateError(err))
			continue
		}
		st.set(catParsed, op.dst.name, op.dst.h, st.appendValue(in.out.b))
	}
	return line, true
}

// templateTime is how __timestamp__ and the date functions see time: in
// the server's zone, as Loki does.
func templateTime(ts int64) time.Time { return time.Unix(0, ts) }
