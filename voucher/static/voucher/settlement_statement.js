// The statement's Print button (no inline handler: the Content-Security-Policy refuses them).
document.getElementById("print-statement").addEventListener("click", () => window.print());
