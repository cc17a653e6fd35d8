"""The LLM side of bgen: the provider client and the context pack given to the model.

    client.py    LLMSettings, LLMClient, LLMReply, RetryNotice; urllib only (anthropic, openai, local servers)
    extract.py   the policy module in a reply: reasoning stripped, fenced block chosen (pure)
    context/     API cheatsheet, policy template and examples, with loaders
"""

from bgen.llm.client import LLMClient, LLMReply, LLMSettings, RetryNotice
from bgen.llm.extract import Extraction, extract, extract_code

__all__ = ["Extraction", "LLMClient", "LLMReply", "LLMSettings", "RetryNotice", "extract",
           "extract_code"]
