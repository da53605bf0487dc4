package wire

import "sync"

// gate admits a worker's numbered tasks strictly in order, at most limit
// running at once (unnumbered tasks count as running too), and reports
// each admitted number to the host before the task is released.
type gate struct {
	mu       sync.Mutex
	next     uint64 // the lowest number not yet admitted or skipped
	running  int
	limit    int
	waiting  map[uint64]chan bool // arrived, not yet admitted: true admits, false skips
	canceled map[uint64]bool      // canceled before admission; true once the task arrived

	out *frameWriter // where start reports go; nil until the pipeline connection is up
}

func newGate() *gate {
	return &gate{next: 1, limit: 1, waiting: map[uint64]chan bool{}, canceled: map[uint64]bool{}}
}

// setOut sets where start reports go.
func (g *gate) setOut(out *frameWriter) {
	g.mu.Lock()
	g.out = out
	g.mu.Unlock()
}

// enterNow counts an unnumbered task as running.
func (g *gate) enterNow() {
	g.mu.Lock()
	g.running++
	g.mu.Unlock()
}

// enter waits for task seq's turn and reports whether it may run (false:
// it was canceled). limit, if positive, becomes the gate's limit.
func (g *gate) enter(seq uint64, limit int) bool {
	g.mu.Lock()
	if limit > 0 {
		g.limit = limit
	}
	if _, ok := g.canceled[seq]; ok { // canceled before it arrived
		if seq < g.next {
			delete(g.canceled, seq) // admit has passed its number
		} else {
			g.canceled[seq] = true // admit must still skip it
		}
		g.mu.Unlock()
		return false
	}
	if seq < g.next { // a number sent twice: never done by wpm's host
		g.running++
		g.mu.Unlock()
		return true
	}
	turn := make(chan bool, 1)
	g.waiting[seq] = turn
	g.admit()
	g.mu.Unlock()
	return <-turn
}

// leave marks a running task done and admits the next ones.
func (g *gate) leave() {
	g.mu.Lock()
	g.running--
	g.admit()
	g.mu.Unlock()
}

// cancel drops task seq unless it started, and reports whether it had. The
// host cancels a task at most once; a number the gate has passed counts as
// started.
func (g *gate) cancel(seq uint64) (started bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if seq < g.next {
		return true
	}
	if _, ok := g.canceled[seq]; ok {
		return false // canceled before
	}
	turn, arrived := g.waiting[seq]
	if arrived {
		delete(g.waiting, seq)
		turn <- false
	}
	g.canceled[seq] = arrived // its number is skipped; an unarrived task is told on arrival
	g.admit()
	return false
}

// admit admits the tasks whose turn it is while places are free, skipping
// canceled numbers. g.mu must be held: reports go out in number order.
func (g *gate) admit() {
	for {
		if arrived, ok := g.canceled[g.next]; ok {
			if arrived {
				delete(g.canceled, g.next)
			}
			g.next++
			continue
		}
		turn, ok := g.waiting[g.next]
		if !ok || g.running >= g.limit {
			return
		}
		delete(g.waiting, g.next)
		g.report(g.next)
		g.next++
		g.running++
		turn <- true
	}
}

// report tells the host that task seq starts. The frame is flushed before
// the task is released, so the host knows of it even if the task then
// kills the process.
func (g *gate) report(seq uint64) {
	if g.out != nil {
		_ = g.out.send(frameStarted, seq, nil, nil, flushNow) // a failure: the host is gone
	}
}
