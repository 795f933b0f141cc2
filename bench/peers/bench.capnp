# The peers' Cap'n Proto contract (peerbench's bench.capnp).
@0xd3c1a2b4e5f60718;

interface Bench {
  add   @0 (a :Int64, b :Int64) -> (result :Int64);
  post  @1 (text :Text) -> ();
  count @2 () -> (n :Int64);
  echo  @3 (data :Data) -> (data :Data);
}
