package importer

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows how an import goes: a bar on a terminal, a plain line
// every few seconds elsewhere (logs, CI), and a line per problem.
type progress struct {
	imp        *importer
	totalBytes int64 // sizes of the top-level files
	totalFiles int

	readBytes atomic.Int64 // read from top-level files (compressed, for archives)
	filesDone atomic.Int64
	acked     atomic.Int64

	mu    sync.Mutex
	w     io.Writer
	bar   *progressbar.ProgressBar
	began time.Time
	quit  chan struct{}
	done  chan struct{}
}

// plainEvery is the interval of plain progress lines.
const plainEvery = 5 * time.Second

func (p *progress) start(w io.Writer) {
	p.began = time.Now()
	if w == nil {
		return
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions64(max(p.totalBytes, 1),
			progressbar.OptionSetWriter(w),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionFullWidth(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionSetDescription("starting"),
		)
	}
	p.quit, p.done = make(chan struct{}), make(chan struct{})
	go p.loop()
}

func (p *progress) loop() {
	defer close(p.done)
	every := plainEvery
	if p.bar != nil {
		every = 200 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
			p.render()
		}
	}
}

func (p *progress) render() {
	p.mu.Lock()
	defer p.mu.Unlock()
	read := p.readBytes.Load()
	files := p.filesDone.Load()
	lines := p.imp.lines.Load()
	if p.bar != nil {
		p.bar.Describe(fmt.Sprintf("files %d/%d, %s lines, %d chunks acked", files, p.totalFiles, humanCount(lines), p.acked.Load()))
		_ = p.bar.Set64(min(read, p.totalBytes))
		return
	}
	elapsed := time.Since(p.began)
	rate := float64(read) / max(elapsed.Seconds(), 0.001)
	eta := "?"
	if rate > 0 && p.totalBytes > read {
		eta = time.Duration(float64(p.totalBytes-read) / rate * float64(time.Second)).Round(time.Second).String()
	} else if p.totalBytes <= read {
		eta = "0s"
	}
	pct := 100.0
	if p.totalBytes > 0 {
		pct = 100 * float64(min(read, p.totalBytes)) / float64(p.totalBytes)
	}
	fmt.Fprintf(p.w, "import: files %d/%d, %s of %s read (%.0f%%), %s lines, %s/s, ETA %s, %d chunks acknowledged\n",
		files, p.totalFiles, humanBytes(read), humanBytes(p.totalBytes), pct, humanCount(lines), humanBytes(int64(rate)), eta, p.acked.Load())
}

// printProblem prints one problem line, above the bar on a terminal.
func (p *progress) printProblem(pr Problem) {
	tag := "skipped"
	if pr.Failed {
		tag = "failed"
	}
	p.printLine(fmt.Sprintf("%s %s: %s", tag, pr.File, pr.Reason))
}

// printLine prints one line, above the bar on a terminal.
func (p *progress) printLine(line string) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Clear()
	}
	fmt.Fprintln(p.w, line)
}

func (p *progress) stop() {
	if p.quit == nil {
		return
	}
	close(p.quit)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Describe(fmt.Sprintf("files %d/%d, %s lines, %d chunks acked", p.filesDone.Load(), p.totalFiles, humanCount(p.imp.lines.Load()), p.acked.Load()))
		_ = p.bar.Set64(max(p.totalBytes, 1))
		_ = p.bar.Finish()
		fmt.Fprintln(p.w)
	}
}

func humanCount(n int64) string {
	switch {
	case n >= 10_000_000:
		return fmt.Sprintf("%.0fM", float64(n)/1e6)
	case n >= 1_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.0fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
