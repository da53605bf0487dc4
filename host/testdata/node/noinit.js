// A worker script that never answers init.
console.error("starting, but never ready");
process.on("message", () => {});
