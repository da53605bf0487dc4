package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/wpmdev/wpm/host"
)

// progressBarWidth is how many cells the terminal bar has.
const progressBarWidth = 30

// progressView shows a task's progress reports on w: a bar redrawn in
// place on a terminal, or a plain line for every 10 % step (and at 100 %)
// otherwise. It is safe for concurrent use.
type progressView struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	drawn    bool // a bar is on the current line
	lastStep int  // the last 10 % step printed, plain mode
}

// newProgressView returns a view on w; w is a terminal when it is a
// character device.
func newProgressView(w io.Writer) *progressView {
	return &progressView{w: w, tty: isTerminal(w), lastStep: -1}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// event is a host.TaskEvents function.
func (v *progressView) event(e host.Event) {
	if e.Type != host.EventTaskProgress {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	pct := int(e.Fraction*100 + 0.5)
	if v.tty {
		filled := pct * progressBarWidth / 100
		fmt.Fprintf(v.w, "\r\033[K[%s%s] %3d%% %s", strings.Repeat("#", filled), strings.Repeat(" ", progressBarWidth-filled), pct, e.Message)
		v.drawn = true
		return
	}
	if step := pct / 10; step > v.lastStep {
		v.lastStep = step
		fmt.Fprintf(v.w, "progress %3d%% %s\n", pct, e.Message)
	}
}

// done ends the bar's line, if one was drawn.
func (v *progressView) done() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.drawn {
		fmt.Fprintln(v.w)
		v.drawn = false
	}
}
