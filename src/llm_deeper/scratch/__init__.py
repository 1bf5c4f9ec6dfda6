"""From-scratch building blocks (numpy and torch only), each proven equal to its library twin.

Import the module you need (`from llm_deeper.scratch import attention`); this
package imports nothing itself so that each piece stays cheap to load.
"""
