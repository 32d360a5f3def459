"""Small arithmetic helpers that build balanced trees instead of chains."""


def tree_sum(values):
    """Sum of Amaranth values as a balanced adder tree (depth log2(n), not n)."""
    values = list(values)
    if not values:
        raise ValueError("tree_sum of nothing")
    while len(values) > 1:
        nxt = [values[i] + values[i + 1] for i in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            nxt.append(values[-1])
        values = nxt
    return values[0]


def popcount(value, width: int):
    """Number of set bits of a ``width``-bit value."""
    return tree_sum(value[i] for i in range(width))
