package shared_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/wpmdev/wpm/shared"
)

// A plugin's unit test sees the task's progress reports without a host.
func ExampleWithProgressTo() {
	task := shared.TaskFunc(func(ctx context.Context, input []byte) ([]byte, error) {
		in, err := shared.ParseObject(input, "steps")
		if err != nil {
			return nil, err
		}
		steps, err := in.Int("steps", 1, 10)
		if err != nil {
			return nil, err
		}
		for i := range steps {
			shared.Progress(ctx, float64(i+1)/float64(steps), fmt.Sprintf("step %d", i+1))
		}
		return []byte(`"done"`), nil
	})
	ctx := shared.WithProgressTo(context.Background(), func(fraction float64, msg string) {
		fmt.Printf("%.2f %s\n", fraction, msg)
	})
	out, err := task.Run(ctx, []byte(`{"steps": 2}`))
	fmt.Println(string(out), err)
	_, err = task.Run(ctx, []byte(`{"steps": 0}`))
	fmt.Println(err, errors.Is(err, shared.ErrInvalidInput))
	// Output:
	// 0.50 step 1
	// 1.00 step 2
	// "done" <nil>
	// "steps" must be a whole number from 1 to 10, got 0 true
}
