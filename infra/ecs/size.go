package ecs

// fargateSizes are the task sizes Fargate offers (Linux, platform 1.4.0 or
// later), smallest first: for a CPU value (1024 = 1 vCPU), memory from min
// to max MiB in steps. 0.25 vCPU takes 512, 1024 or 2048, hence two rows.
var fargateSizes = []struct{ cpu, min, max, step int }{
	{256, 512, 1024, 512},
	{256, 2048, 2048, 1024},
	{512, 1024, 4096, 1024},
	{1024, 2048, 8192, 1024},
	{2048, 4096, 16384, 1024},
	{4096, 8192, 30720, 1024},
	{8192, 16384, 61440, 4096},
	{16384, 32768, 122880, 8192},
}

// taskSize returns the task size for a replicator that may use memMiB: the
// smallest Fargate CPU value whose memory range holds it, and the memory
// rounded up to that range's step. Above the largest size it returns the
// largest, and capped.
func taskSize(memMiB int) (cpu, taskMiB int, capped bool) {
	for _, s := range fargateSizes {
		if memMiB > s.max {
			continue
		}
		m := s.min
		if memMiB > m {
			m += (memMiB - s.min + s.step - 1) / s.step * s.step
		}
		return s.cpu, m, false
	}
	last := fargateSizes[len(fargateSizes)-1]
	return last.cpu, last.max, true
}
