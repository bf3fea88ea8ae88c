"""The command line: one command table, the output helpers, and the command bodies. Only this
package prints or picks exit codes.
"""
