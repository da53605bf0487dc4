package queue

// PluginsForExamples is where the tests' plugins are built, for the
// package's examples.
func PluginsForExamples() string { return pluginDir }
