"""RFC 9162 hashing and proofs: the published Certificate Transparency vectors, and
properties over random trees (every proof verifies; any change to it fails)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from safeshare.archive import merkle

# The reference inputs and roots used by every Certificate Transparency implementation.
INPUTS = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]  # fmt: skip
LEAVES = [merkle.leaf_hash(d) for d in INPUTS]
ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]  # fmt: skip
INCLUSION = [  # (leaf index, tree size, audit path)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CONSISTENCY = [  # (first size, second size, proof)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip


def test_roots_match_the_reference_for_every_size() -> None:
    for size in range(len(LEAVES) + 1):
        assert merkle.root(LEAVES[:size]) == ROOTS[size], size


def test_inclusion_proofs_match_the_reference_and_verify() -> None:
    for index, size, path in INCLUSION:
        proof = merkle.inclusion_proof(index, LEAVES[:size])
        assert [p.hex() for p in proof] == path
        assert merkle.verify_inclusion(index, size, LEAVES[index], proof, ROOTS[size])
        assert not merkle.verify_inclusion(index, size, LEAVES[index], proof, ROOTS[size - 1])


def test_consistency_proofs_match_the_reference_and_verify() -> None:
    for first, second, path in CONSISTENCY:
        proof = merkle.consistency_proof(first, LEAVES[:second])
        assert [p.hex() for p in proof] == path
        assert merkle.verify_consistency(first, second, proof, ROOTS[first], ROOTS[second])


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    left, right = LEAVES[1], LEAVES[2]
    # A node is never the hash of its children's bytes as a leaf entry.
    assert merkle.node_hash(left, right) != merkle.leaf_hash(left + right)


trees = st.lists(st.binary(max_size=8), min_size=1, max_size=70, unique=True).map(
    lambda entries: [merkle.leaf_hash(e) for e in entries]
)


@given(trees, st.data())
def test_every_inclusion_proof_verifies_and_a_changed_one_fails(
    leaves: list[bytes], data: st.DataObject
) -> None:
    size = len(leaves)
    index = data.draw(st.integers(0, size - 1))
    top = merkle.root(leaves)
    proof = merkle.inclusion_proof(index, leaves)
    assert merkle.verify_inclusion(index, size, leaves[index], proof, top)
    assert not merkle.verify_inclusion(index, size, merkle.leaf_hash(b"other"), proof, top)
    if proof:
        bent = list(proof)
        bent[data.draw(st.integers(0, len(bent) - 1))] = merkle.leaf_hash(b"bent")
        assert not merkle.verify_inclusion(index, size, leaves[index], bent, top)
    if size > 1:
        assert not merkle.verify_inclusion((index + 1) % size, size, leaves[index], proof, top)


@given(trees, st.data())
def test_every_consistency_proof_verifies_and_a_rewritten_prefix_fails(
    leaves: list[bytes], data: st.DataObject
) -> None:
    second = len(leaves)
    first = data.draw(st.integers(1, second))
    proof = merkle.consistency_proof(first, leaves)
    old_root, new_root = merkle.root(leaves[:first]), merkle.root(leaves)
    assert merkle.verify_consistency(first, second, proof, old_root, new_root)
    # A log whose earlier leaf was rewritten (and whose new root was re-signed) is caught.
    rewritten = list(leaves)
    rewritten[data.draw(st.integers(0, first - 1))] = merkle.leaf_hash(b"rewritten")
    if rewritten[:first] != leaves[:first]:
        forged = merkle.consistency_proof(first, rewritten)
        assert not merkle.verify_consistency(
            first, second, forged, old_root, merkle.root(rewritten)
        )
