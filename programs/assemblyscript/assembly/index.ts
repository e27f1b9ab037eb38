// as-probe: an AssemblyScript (TypeScript) program built as a WASI
// preview-1 command with the AssemblyScript compiler and its WASI shim.
//
//   as-probe [ARG...]   prints its arguments, $GREETING, the count of the
//                       primes below 100000 and the time's sanity, then
//                       exits 5

function isPrime(n: i32): bool {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) {
    if (n % d == 0) return false;
  }
  return true;
}

const args = process.argv;
console.log("hello from AssemblyScript with " + (args.length - 1).toString() + " arguments");
for (let i = 1; i < args.length; i++) {
  console.log("arg " + i.toString() + ": " + args[i]);
}
const env = process.env;
console.log("GREETING=" + (env.has("GREETING") ? env.get("GREETING") : "(unset)"));
let count = 0;
for (let i = 0; i < 100000; i++) {
  if (isPrime(i)) count++;
}
console.log("primes below 100000: " + count.toString());
// The clock is the host's: after 2020, and it moves forward.
const t0 = Date.now();
console.log("clock after 2020: " + (t0 > 1577836800000 ? "yes" : "no"));
process.exit(5);
