package importer

import (
	"context"
	"fmt"
	"sync"

	"github.com/logsift/logsift/pkg/chunk"
)

// encoders turn batches into chunks and ship them, on as many goroutines
// as there are workers: encoding (compression, filter, content hash) costs
// more than parsing, so a single large file still uses every core.
type encoders struct {
	imp    *importer
	ctx    context.Context
	cancel context.CancelCauseFunc
	ch     chan *batch
	wg     sync.WaitGroup
	acks   sync.WaitGroup // chunks shipped and not yet acknowledged
}

func newEncoders(ctx context.Context, imp *importer, cancel context.CancelCauseFunc) *encoders {
	e := &encoders{imp: imp, ctx: ctx, cancel: cancel, ch: make(chan *batch, imp.workers)}
	for range imp.workers {
		e.wg.Add(1)
		go e.loop()
	}
	return e
}

// submit queues a batch; it blocks while every encoder is busy, which is
// what bounds the importer's memory to a few batches per worker.
func (e *encoders) submit(b *batch) error {
	select {
	case e.ch <- b:
		return nil
	case <-e.ctx.Done():
		putBatch(b)
		return context.Cause(e.ctx)
	}
}

func (e *encoders) loop() {
	defer e.wg.Done()
	for b := range e.ch {
		job := b.job
		if e.ctx.Err() != nil {
			putBatch(b) // the import is ending; the file stays undone
			continue
		}
		ents := b.build()
		n := len(ents)
		data, _, err := chunk.Encode(job.labels, ents, e.imp.opts.Chunk)
		putBatch(b)
		if err != nil {
			job.fail(fmt.Sprintf("cannot build a chunk: %v", err))
			continue
		}
		// Ship can fail after queueing the chunk (its context ended while
		// it waited for the fsync); the chunk may still be delivered and
		// acknowledged later, so the two paths share one Done.
		e.acks.Add(1)
		var once sync.Once
		done := func() { once.Do(e.acks.Done) }
		err = e.imp.sink.Ship(e.ctx, data, func() {
			e.imp.prog.acked.Add(1)
			job.acked()
			done()
		})
		if err != nil {
			done()
			e.cancel(fmt.Errorf("import: shipping a chunk of %s: %w", job.path, err))
			continue
		}
		e.imp.chunks.Add(1)
		e.imp.entries.Add(int64(n))
	}
}

// close waits for the queued batches to be shipped.
func (e *encoders) close() {
	close(e.ch)
	e.wg.Wait()
}

// waitAcks waits for the acknowledgement callbacks of every shipped chunk;
// call it only after the shipper's Flush succeeded.
func (e *encoders) waitAcks() { e.acks.Wait() }
