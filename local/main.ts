// The local stack (issue: APIs and local mode) is not built yet.
console.log('npm start: the local stack is not yet available.');
