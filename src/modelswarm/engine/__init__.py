"""The inference engine under the utilities: prompts, batching, the prompts' prefix trie with
tree attention, and greedy decoding. It knows models and token ids, not tasks or marks."""
